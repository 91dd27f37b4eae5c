"""The live stylizer: styles resolved, preloaded and warmed; switches between frames; stale history dropped."""
import numpy as np
import pytest
import torch

from brushstream.core.api import load
from brushstream.core.errors import BrushstreamError
from brushstream.core.io.image import from_uint8, to_uint8
from brushstream.obs_filter.stylizer import LiveStylizer, live_methods, style_networks

from .conftest import SHARED_DATA

STYLES = SHARED_DATA / "styles"


@pytest.fixture(scope="module")
def frames():
    from brushstream.core.io.video import VideoReader
    reader = VideoReader(SHARED_DATA / "video" / "sam2_dog.mp4", size=(160, 90), max_frames=12)
    return [to_uint8(f.image) for f in reader]


def test_per_style_networks_resolve_through_the_manifest_fields():
    assert style_networks("reconet", ["starry_night"], None) == [("starry_night", "reconet_rt_starry_night")]
    assert style_networks("reconet", [], "reconet_rt_the_great_wave") == [("the_great_wave", "reconet_rt_the_great_wave")]
    everything = dict(style_networks("reconet", [], None))       # the bundled networks marked live
    assert {"starry_night", "the_great_wave", "composition_vii"} == set(everything)
    assert dict(style_networks("johnson", [], None)) == {"mondrian": "johnson_rt_mondrian", "udnie": "johnson_rt_udnie"}
    assert style_networks("johnson", ["the_great_wave"], None) == [("the_great_wave", "johnson_the_great_wave")]
    with pytest.raises(BrushstreamError, match="mona_lisa: no reconet network paints this style.*the_great_wave"):
        style_networks("reconet", ["mona_lisa"], None)


def test_every_method_that_declares_it_can_stream_is_live_and_no_other():
    from brushstream.core.methods import available
    assert live_methods() == [n for n, c in available().items() if c.capabilities.realtime]
    assert {"adain", "lst", "reconet"} <= set(live_methods()) and "gatys" not in live_methods()


def test_the_fast_adain_path_streams_any_painting(frames):
    """Live arbitrary style: AdaIN's live settings (the distilled pair at 256 px) unless the user says otherwise."""
    live = LiveStylizer("adain", [str(STYLES / "the_great_wave.jpg"), str(STYLES / "candy.jpg")])
    model = live.current.model
    assert type(model.encoder).__name__ == "StudentEncoder" and model.work_size == 256    # the fast pair
    live.warm(frames[0])
    first = live(frames[1])
    assert first.shape == frames[1].shape and np.abs(first.astype(int) - frames[1]).mean() > 10   # it is stylized
    live.step(1)
    other = live(frames[2])
    assert live.current.label == "candy"        # the switch took effect at this frame, with no stale history:
    reference = to_uint8(model.stylize(from_uint8(frames[2]), live.current.code))
    assert np.abs(other.astype(int) - reference).mean() < 2
    assert LiveStylizer("adain", [str(STYLES / "candy.jpg")], options={"work_size": 384}).current.model.work_size == 384


def test_switching_takes_effect_at_the_next_frame_and_matches_that_style(frames):
    live = LiveStylizer("reconet", ["starry_night", "the_great_wave"], options={"norm": "frame"})
    live.warm(frames[0])
    first = live(frames[1])
    live.select(1)
    assert live.current.label == "starry_night"      # nothing changes mid-frame: the switch waits for the next
    second = live(frames[1])
    assert live.current.label == "the_great_wave" and live.switches == 1
    reference = load("reconet", model="reconet_rt_the_great_wave", norm="frame")
    expected = to_uint8(reference.stylize(from_uint8(frames[1]), reference.encode_style(0)))
    assert np.abs(second.astype(int) - expected).max() <= 1
    assert np.abs(second.astype(int) - first).mean() > 10
    live.step(+1)
    live(frames[2])
    assert live.current.label == "starry_night"      # wraps around
    live.step(-1)
    assert live.wanted_label() == "the_great_wave"
    with pytest.raises(BrushstreamError, match="does not exist"):
        live.select(5)


def test_warming_picks_the_backend_and_leaves_no_history(frames):
    live = LiveStylizer("reconet", ["starry_night"])
    live.warm(frames[0])
    slot = live.current
    assert slot.model.runner._picked or slot.state.data      # timed (frame norms) or folded (stream norms)
    assert slot.state.prev_output is None and slot.state.prev_input is None


def test_a_style_resumed_after_a_switch_does_not_blend_in_its_stale_frames(frames):
    style_a, style_b = str(STYLES / "starry_night.jpg"), str(STYLES / "the_great_wave.jpg")
    live = LiveStylizer("lst", [style_a, style_b], options={"work_size": 0}, temporal_strength=0.8)
    live.warm(frames[0])
    live(frames[1])                 # A, history: frame 1
    live.step(+1)
    live(frames[2])
    live(frames[8])                 # B
    live.step(+1)
    resumed = live(frames[8])       # back to A, whose last frame was frame 1
    model = live.slots[0].model
    alone = to_uint8(model.stylize(from_uint8(frames[8]), live.slots[0].code))
    assert np.abs(resumed.astype(int) - alone).max() <= 1


def test_a_style_added_while_streaming_is_built_warm_and_announced(frames):
    live = LiveStylizer("lst", [str(STYLES / "starry_night.jpg")], options={"work_size": 0})
    ready = []
    live.add_style(str(STYLES / "the_great_wave.jpg"), frames[0], done=ready.append).join(120)
    assert ready == [1] and live.labels() == ["starry_night", "the_great_wave"]
    assert live.index == 0                           # added, not switched to
    assert live.slots[1].state.prev_output is None
    live.add_style("/nowhere/style.jpg", None).join(10)  # logged, not raised into the stream
    assert len(live.labels()) == 2
    live(frames[5])                                     # with no frame given, the newest one stylized warms it
    live.add_style(str(STYLES / "composition_vii.jpg"), done=live.select).join(120)
    assert live.wanted_label() == "composition_vii" and live.slots[2].model.work_size == 0


def test_only_the_live_methods_and_real_style_images():
    with pytest.raises(BrushstreamError, match="the live filter streams adain, .*reconet, video_multistyle .*not 'gatys'"):
        LiveStylizer("gatys")
    with pytest.raises(BrushstreamError, match="no such style image"):
        LiveStylizer("lst", ["not_a_file.jpg"])
    with pytest.raises(BrushstreamError, match="no such style image"):
        LiveStylizer("adain", ["not_a_file.jpg"])


def test_strength_is_clamped_and_used(frames):
    live = LiveStylizer("reconet", ["starry_night"], options={"norm": "frame"})
    live.set_strength(3)
    assert live.strength == 1.0
    live.set_strength(0.0)
    out = live(frames[3])
    assert np.abs(out.astype(int) - frames[3]).max() <= 1    # strength 0 is the photo itself
    with torch.no_grad():
        live.set_strength(1.0)
        assert np.abs(live(frames[3]).astype(int) - frames[3]).mean() > 10


def test_a_multi_style_network_streams_every_trained_style_and_a_switch_keeps_its_memory(frames):
    live = LiveStylizer("video_multistyle")
    model = live.current.model
    assert live.labels() == list(model.capabilities.fixed_styles) and len(live.labels()) == 8
    assert len({id(slot.model) for slot in live.slots}) == 1            # one network holds every style
    for frame in frames[1:5]:
        live(frame)
    live.select(live.find("mosaic"))
    switched = live(frames[5])
    assert live.current.label == "mosaic"
    # The same stream stylized directly: four frames in the first style, then the fifth in mosaic, memory kept.
    state = model.new_state()
    with torch.inference_mode():
        for frame in frames[1:5]:
            model.stylize(from_uint8(frame), live.slots[0].code, state=state)
        kept = to_uint8(model.stylize(from_uint8(frames[5]), live.current.code, state=state))
        cold = to_uint8(model.stylize(from_uint8(frames[5]), live.current.code, state=model.new_state()))
    assert np.abs(switched.astype(int) - kept).mean() < 0.5
    assert np.abs(switched.astype(int) - cold).mean() > 2 * np.abs(switched.astype(int) - kept).mean() + 0.2
    with pytest.raises(BrushstreamError, match="mona_lisa"):
        LiveStylizer("video_multistyle", ["mona_lisa"])
