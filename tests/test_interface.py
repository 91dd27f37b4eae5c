"""The method interface itself: fresh networks, style specs, stream state, batching, options as data."""
import pytest
import torch

from brushstream.core.errors import BrushstreamError
from brushstream.core.methods import Capabilities, Option, StyleMethod, StyleSpec, available, build, register
from brushstream.core.methods.registry import unregister

from .conftest import SHARED_DATA


@pytest.fixture(scope="module")
def style():
    from brushstream.core.io.image import load_image
    return load_image(SHARED_DATA / "styles" / "starry_night.jpg", long_side=96).image


@pytest.fixture(scope="module")
def content():
    from brushstream.core.io.image import load_image
    return load_image(SHARED_DATA / "content_eval" / "skimage_chelsea.jpg", long_side=64).image


# -- 1. fresh networks over shared verified weights ------------------------------------------------------

def test_two_built_methods_share_no_parameter_tensors():
    a, b, w = build("adain"), build("adain"), build("wct")
    ptrs = lambda m: {p.data_ptr() for p in m.parameters()}  # noqa: E731
    assert not ptrs(a) & ptrs(b) and not ptrs(a) & ptrs(w)
    torch.testing.assert_close(a.encoder.conv2.weight, w.encoders["vgg19n"].conv2.weight)  # same verified weights


def test_moving_one_method_leaves_the_others_usable(content, style):
    wct = build("wct", levels=("relu3_1",))
    code = wct.encode_style(style)
    before = wct.stylize(content, code)
    adain = build("adain").to(torch.float64)
    assert adain.dtype == torch.float64 and wct.dtype == torch.float32
    torch.testing.assert_close(wct.stylize(content, code), before)
    adain.train()
    assert not wct.training and not any(p.requires_grad for p in wct.parameters())


def test_style_code_follows_a_device_and_dtype_move(content, style):
    adain = build("adain")
    code = adain.encode_style(style)
    out32 = adain.stylize(content, code)
    moved = code.to("cpu", torch.float64)
    assert all(t.dtype == torch.float64 for pair in moved.data for t in pair)
    assert all(t.dtype == torch.float32 for pair in code.data for t in pair)     # the original is untouched
    adain.to(torch.float64)                                                      # moved after encoding
    out64 = adain.stylize(content, code)
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out32, atol=1e-4, rtol=1e-4)
    code64 = adain.encode_style(style)            # encoded in float64, then the method goes back to float32
    adain.to(torch.float32)
    torch.testing.assert_close(adain.stylize(content, code64), out32, atol=1e-4, rtol=1e-4)
    assert code.to("cpu", torch.float32) is code                 # nothing to move: the per-frame call is free
    wct = build("wct", levels=("relu3_1",))
    wcode = wct.encode_style(style)
    wct.to(torch.float64)
    assert wct.stylize(content, wcode).dtype == torch.float64


def test_wct_keeps_its_style_statistics_in_float64(content, style, monkeypatch):
    from brushstream.core.methods import wct as wct_module

    seen = []
    real = wct_module.whiten_colour
    monkeypatch.setattr(wct_module, "whiten_colour", lambda fc, st, *a: seen.append(st.cov_sqrt.dtype) or real(fc, st, *a))
    wct = build("wct", levels=("relu3_1",))
    wct.stylize(content, wct.encode_style(style))
    assert seen == [torch.float64]                              # a float32 method does not round its covariances


def test_build_passes_progress_only_to_methods_that_show_it():
    assert build("gatys", progress=False).progress is False and build("gatys").progress is True
    assert not hasattr(build("adain", progress=False), "progress")


# -- 2. style spec, stream state, batching ----------------------------------------------------------------

class _FrameCounter(StyleMethod):
    """A test method with fixed styles: output = style colour, brightened by the frame number it counted."""
    name = "test_frame_counter"
    summary = "test only"
    capabilities = Capabilities(arbitrary_style=False, fixed_styles=("red", "green", "blue"), video_native=True)
    options = (Option("gain", "float", 0.1, "brightening per frame", minimum=0.0, maximum=1.0),)
    batches = True
    stride = 1

    def __init__(self, gain: float = 0.1):
        super().__init__()
        self.gain = gain
        self.anchor = torch.nn.Parameter(torch.zeros(()), requires_grad=False)
        self.batch_sizes = []

    def _encode_style(self, *, images, refs, weights):
        return sum(w * torch.eye(3)[i] for w, i in zip(weights, refs)).view(1, 3, 1, 1)

    def _stylize(self, *, content, code, strength, mask, state):
        self.batch_sizes.append(content.shape[0])
        seen = 0
        if state is not None:
            seen = state.data.get("frames", 0)
            state.data["frames"] = seen + 1
        return (code.data + self.gain * seen + 0 * content).expand_as(content)


@pytest.fixture
def counter():
    register(_FrameCounter)
    yield build("test_frame_counter")
    unregister("test_frame_counter")


def test_stream_state_carries_frames_and_resets_on_size_change(counter):
    code = counter.encode_style("red")
    state = counter.new_state(temporal_strength=0)   # the blend is tested in test_temporal.py
    frames = 0.5 + 0.01 * torch.rand(3, 3, 8, 8)             # one shot: no scene cut
    out = counter.stylize(frames, code, state=state)
    assert state.frame_index == 3 and state.data["frames"] == 3
    assert counter.batch_sizes == [1, 1, 1]                       # a stream goes frame by frame
    assert [round(float(o[1].mean()), 3) for o in out] == [0.0, 0.1, 0.2]      # green grows with the frame count
    counter.stylize(frames[:1], code, state=state)
    assert state.data["frames"] == 4                             # carried across calls
    counter.stylize(torch.full((1, 3, 12, 8), 0.5), code, state=state)   # a new size drops the history
    assert state.resets == 1 and state.data["frames"] == 1 and state.frame_index == 5
    other = counter.new_state()
    counter.stylize(frames[:1], code, state=other)
    assert other.data["frames"] == 1 and state.data["frames"] == 1   # states are independent
    with pytest.raises(BrushstreamError, match="stream state was made by 'adain'"):
        counter.stylize(frames[:1], code, state=build("adain").new_state())


def test_batching_policy_runs_feed_forward_batches_at_once(counter, content, style):
    counter.stylize(torch.rand(4, 3, 8, 8), counter.encode_style(0))
    assert counter.batch_sizes == [4]
    adain = build("adain")
    code = adain.encode_style(style)
    batch = torch.cat([content, content.flip(-1)])
    together = adain.stylize(batch, code)
    torch.testing.assert_close(together[1:], adain.stylize(batch[1:], code), atol=1e-5, rtol=1e-5)


def test_style_spec_indices_names_and_blends(counter, style):
    red = counter.encode_style("red")
    assert red.refs == (0,)
    torch.testing.assert_close(counter.encode_style(0).data, red.data)
    blend = counter.encode_style({"red": 3, 2: 1})
    torch.testing.assert_close(blend.data.flatten(), torch.tensor([0.75, 0.0, 0.25]))
    torch.testing.assert_close(counter.encode_style(StyleSpec.from_refs(["red", "blue"], [3, 1])).data, blend.data)
    with pytest.raises(BrushstreamError, match="has no style 'purple'; its styles: 0=red, 1=green, 2=blue"):
        counter.encode_style("purple")
    with pytest.raises(BrushstreamError, match="has no style 7"):
        counter.encode_style(7)
    with pytest.raises(BrushstreamError, match="give a style index or name, not an image"):
        counter.encode_style(style)
    with pytest.raises(BrushstreamError, match="takes style images, not style indices"):
        build("adain").encode_style("red")
    with pytest.raises(BrushstreamError, match="finite"):
        counter.encode_style(["red", "blue"], [float("nan"), 1])


def test_registry_is_what_hosts_read(counter):
    assert "test_frame_counter" in available()
    from brushstream.core.cli import build_parser
    from brushstream.nodes.stylize import encode_style, load_model, stylize_images

    help_text = build_parser()._subparsers._group_actions[0].choices["stylize"].format_help()
    assert "test_frame_counter" in help_text and "--gain" in help_text and "brightening per frame" in help_text
    # the node pack's loader builds any registered method from its declared options (schemas: host_tests/)
    model = load_model("test_frame_counter", {"gain": 0.0})
    out = stylize_images(model, encode_style(model, [], trained_style="green"), torch.rand(2, 8, 8, 3),
                         strength=1.0, preserve_color=False, precision="fp32")
    torch.testing.assert_close(out[..., 1], torch.ones(2, 8, 8))
    with pytest.raises(BrushstreamError, match="gain"):
        load_model("test_frame_counter", {"gain": 7.0})


# -- 3. options as data ------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, options, needle", [
    ("swap", {"patch_size": 4}, "patch_size (--patch-size) must be odd, got 4"),
    ("swap", {"patch_size": -3}, "patch_size (--patch-size) must be in [1, 9], got -3"),
    ("swap", {"patch_size": 99}, "must be in [1, 9], got 99"),
    ("swap", {"patch_size": 0}, "must be in [1, 9], got 0"),
    ("gatys", {"steps": 0}, "steps (--steps) must be in [1, 100000], got 0"),
    ("gatys", {"style_weight": float("nan")}, "style_weight (--style-weight) must be a finite number"),
    ("gatys", {"tv_weight": float("inf")}, "tv_weight (--tv-weight) must be a finite number"),
    ("gatys", {"lr": "nan"}, "lr (--lr) must be a finite number"),
    ("gatys", {"scales": "abc"}, "scales (--scales) must be a number, got 'abc'"),
    ("gatys", {"scales": "0,1"}, "scales (--scales) must be in [0.01, 1]"),
    ("wct", {"levels": "relu6_1"}, "levels (--levels) has unknown names relu6_1"),
    ("adain", {"patch_size": 3}, "adain has no option patch_size"),
])
def test_options_are_checked_once_for_every_host(method, options, needle):
    with pytest.raises(BrushstreamError) as err:
        build(method, **options)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_declared_defaults_are_the_constructor_defaults():
    import inspect
    for name, cls in available().items():
        params = inspect.signature(cls.__init__).parameters
        for opt in cls.options:
            assert params[opt.name].default == opt.default, (name, opt.name)
            assert opt.parse(opt.default) == opt.default


def test_the_python_api_takes_what_the_cli_takes_and_refuses_ambiguous_tensors(content, style):
    import brushstream
    unit = content[..., :48, :48].clone()
    reference = brushstream.stylize(unit, style)
    as_bytes = brushstream.stylize((unit * 255).round().to(torch.uint8), style)   # 0..255 bytes mean one thing
    assert (as_bytes - reference).abs().max() < 0.02
    for scaled, needle in ((unit * 255, "divide by 255"), (unit * 2 - 1, r"use \(x \+ 1\) / 2")):
        with pytest.raises(BrushstreamError, match=needle):
            brushstream.stylize(scaled, style)
    with pytest.raises(BrushstreamError, match="must be float in \\[0, 1\\] or uint8"):
        brushstream.stylize(unit.to(torch.int32), style)
    with pytest.raises(BrushstreamError, match="needs the style code that encode_style\\(\\) returns, got NoneType"):
        build("adain").stylize(unit, None)
    adain = build("adain")
    with pytest.raises(BrushstreamError, match="content image values span .*divide by 255"):
        adain.stylize(unit * 255, adain.encode_style(style))     # the model itself refuses it too
    by_name = brushstream.stylize(unit, "udnie", method="msgnet")     # a trained style by name, as on the CLI
    by_index = brushstream.stylize(unit, "3", method="msgnet")
    msgnet = build("msgnet")
    assert msgnet.capabilities.fixed_styles[3] == "udnie"
    assert torch.allclose(by_name, by_index) and not torch.allclose(by_name, brushstream.stylize(unit, "0", method="msgnet"))


@pytest.mark.parametrize("method, options", [
    ("adain", {}), ("adain", {"level": "relu4_1"}), ("wct", {}), ("wct", {"levels": "relu4_1,relu3_1"}),
    ("swap", {}), ("lst", {}), ("lst", {"model": "lst_r41"}), ("johnson", {}), ("msgnet", {}), ("reconet", {}),
    ("metanet", {}), ("gatys", {}),
])
def test_what_a_method_says_it_downloads_is_what_it_needs(monkeypatch, method, options):
    """Without the VGG16 file anywhere, a method builds offline unless its declaration says when it needs it."""
    monkeypatch.delenv("BRUSHSTREAM_WEIGHTS_DIR", raising=False)
    from brushstream.core.nets import pretrained
    pretrained._read.cache_clear()
    declared = available()[method].needs_download
    flag = {"level": "with --level relu4_1", "levels": "--levels includes relu4_1", "model": "with --model lst_r41"}
    needs = bool(declared) and ("always" in declared or any(k in options and flag[k] in declared for k in flag))
    if needs:
        with pytest.raises(BrushstreamError, match="not bundled: `brushstream methods` says what needs it"):
            build(method, **options)
    else:
        build(method, **options)
