"""Linear Style Transfer (Li et al. 2019) at relu3_1: the transform's maths, the style code made once per clip,
blending, training, and the trained file through the registry."""
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from brushstream.core.errors import BrushstreamError
from brushstream.core.hub import weights as weight_store
from brushstream.core.methods import build
from brushstream.core.nets import pretrained
from brushstream.core.nets.lst import LinearTransform
from brushstream.core.ops.resize import crop_box, pad_with_context
from brushstream.core.train.catalogue import get_recipe
from brushstream.core.train.data import UNSEEN_STYLES
from brushstream.core.train.loop import fit

from .conftest import SHARED_DATA

STYLES = SHARED_DATA / "styles"
STARRY = str(STYLES / "starry_night.jpg")
STEPS = 16


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny LST module trained for a few steps on two photos and one style: (file, loss history)."""
    root = tmp_path_factory.mktemp("lst")
    photos = root / "photos"
    photos.mkdir()
    for p in sorted((SHARED_DATA / "content").glob("*.jpg"))[:2]:
        shutil.copy(p, photos)
    recipe = get_recipe("lst")(content_dir=str(photos), style=(STARRY,), size=48, batch=2, steps=STEPS, style_size=96,
                               style_zoom=(1.0, 1.0))
    out, ckpt = root / "lst.safetensors", root / "lst.ckpt"
    fit(recipe, out, checkpoint=ckpt, progress=False, loss_curve=False)
    return out, [h["total"] for h in torch.load(ckpt, weights_only=True)["history"]]


@pytest.fixture(scope="module")
def lst(trained):
    return build("lst", model=str(trained[0]))


def _images(seed, *shapes):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(*s, generator=g) for s in shapes]


def _features(seed, batch, channels, h, w):
    """Positive, correlated features, like ReLU outputs: a random channel mix of random maps."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(channels, channels, generator=g) / channels ** 0.5
    x = torch.einsum("dc,bchw->bdhw", mix, torch.randn(batch, channels, h, w, generator=g))
    return x.relu() + torch.rand(1, channels, 1, 1, generator=g)


def _covariance(x):
    x = x.flatten(2) - x.flatten(2).mean(2, keepdim=True)
    return x @ x.transpose(1, 2) / x.shape[2]


@torch.no_grad()
def test_transfer_carries_the_style_mean_exactly():
    torch.manual_seed(0)
    for model in (LinearTransform(), LinearTransform().start_near_identity()):
        content, style = _features(1, 2, 256, 12, 16), _features(2, 2, 256, 10, 9) * 3
        out = model(content, style)   # image i takes style i
        torch.testing.assert_close(out.mean((2, 3)), style.mean((2, 3)), atol=1e-4, rtol=1e-5)
        matrix, mean = model.style_matrix(style[:1])   # one code serves a whole batch
        out = model.transfer(content, matrix, mean)
        torch.testing.assert_close(out.mean((2, 3)), mean.flatten(1).expand(2, -1), atol=1e-4, rtol=1e-5)


class _MatrixRoot(torch.nn.Module):
    """An ideal branch: the covariance of the first m channels (what compress keeps) to the power ``p``."""

    def __init__(self, m, p):
        super().__init__()
        self.m, self.p = m, p

    def forward(self, centred):
        values, vectors = torch.linalg.eigh(_covariance(centred[:, :self.m].double()))
        return (vectors @ torch.diag_embed(values ** self.p) @ vectors.transpose(1, 2)).float()


@torch.no_grad()
def test_ideal_branches_whiten_the_content_and_colour_it_with_the_style_covariance():
    c, m = 48, 8
    model = LinearTransform(c, m)
    keep = torch.eye(c)[:, :m]   # compress keeps the first m channels, unzip puts them back
    model.start_near_identity(keep)
    model.content_branch, model.style_branch = _MatrixRoot(m, -0.5), _MatrixRoot(m, 0.5)
    content, style = _features(3, 1, c, 20, 24), _features(4, 1, c, 16, 18)
    out = model(content, style)
    torch.testing.assert_close(_covariance(out[:, :m].double()), _covariance(style[:, :m].double()),
                               atol=1e-3, rtol=1e-3)
    assert not torch.allclose(_covariance(content[:, :m]), _covariance(style[:, :m]), atol=0.1)
    torch.testing.assert_close(out[:, m:], style[:, m:].mean((2, 3), keepdim=True).expand_as(out[:, m:]))


def test_recipe_trains_on_every_style_but_the_held_out_ones_and_lowers_the_loss(trained):
    paths = get_recipe("lst")(style_dir=str(STYLES)).style_paths()
    assert {p.stem for p in paths} == {p.stem for p in STYLES.glob("*.jpg")} - set(UNSEEN_STYLES)
    losses = trained[1]
    assert len(losses) == STEPS
    assert sum(losses[-4:]) / 4 < 0.85 * sum(losses[:4]) / 4, losses


def test_the_file_rebuilds_the_module_through_the_registry(trained, lst):
    path = trained[0]
    assert path.stat().st_size < 8e6
    tensors, meta = weight_store.load_state_dict(path)
    assert meta["arch"] == "lst_transform" and meta["level"] == "relu3_1" and meta["recipe_name"] == "lst"
    assert json.loads(meta["config"]) == lst.transform.config() and json.loads(meta["styles"]) == ["starry_night"]
    assert all(v.dtype == torch.float16 for v in tensors.values())
    own = lst.transform.state_dict()
    assert set(own) == set(tensors) and all(torch.equal(own[k], tensors[k].float()) for k in own)
    x, a, b = _images(5, (1, 3, 40, 52), (1, 3, 64, 64), (1, 3, 64, 64))
    ya, yb = lst.stylize(x, lst.encode_style(a)), lst.stylize(x, lst.encode_style(b * 0.3))
    assert ya.shape == x.shape and not torch.allclose(ya, yb, atol=1e-3)
    with torch.no_grad():   # strength 0 is the reconstruction, with the picture's surroundings as context
        padded, box = pad_with_context(x, lst.stride, lst.context)
        plain = crop_box(lst.decoder(lst.encoder(padded)["relu3_1"]), box).clamp(0, 1)
    torch.testing.assert_close(lst.stylize(x, lst.encode_style(a), strength=0.0), plain)


def test_the_style_code_is_made_once_and_reused_for_every_frame(lst):
    calls = {"style": 0, "content": 0}
    hooks = [getattr(lst.transform, f"{k}_branch").register_forward_hook(
        lambda *_, k=k: calls.__setitem__(k, calls[k] + 1)) for k in calls]
    try:
        style, frames = _images(6, (1, 3, 64, 64), (3, 3, 40, 48))
        code = lst.encode_style(style)
        matrix, mean = code.data
        assert matrix.shape == (1, 32, 32) and mean.shape == (1, 256, 1, 1)
        state = lst.new_state()
        lst.stylize(frames[:2], code, state=state)
        lst.stylize(frames[2:], code, state=state)
        assert calls == {"style": 1, "content": 3}   # one style matrix, one content matrix per frame
    finally:
        for h in hooks:
            h.remove()


def test_a_new_style_between_two_frames_is_a_new_code_and_nothing_is_reloaded(lst, monkeypatch):
    style_a, style_b, frames = _images(7, (1, 3, 64, 64), (1, 3, 48, 80), (2, 3, 40, 48))
    style_b = style_b * 0.4
    code_a = lst.encode_style(style_a)

    def no_reload(*_a, **_k):
        raise AssertionError("a weights file was read again")
    monkeypatch.setattr(pretrained, "verified_state_dict", no_reload)
    monkeypatch.setattr(weight_store, "resolve", no_reload)
    state = lst.new_state(temporal_strength=0.0)
    first = lst.stylize(frames[:1], code_a, state=state)
    code_b = lst.encode_style(style_b)
    second = lst.stylize(frames[1:], code_b, state=state)
    torch.testing.assert_close(first, lst.stylize(frames[:1], code_a))
    torch.testing.assert_close(second, lst.stylize(frames[1:], code_b))
    assert (second - lst.stylize(frames[1:], code_a)).abs().mean() > 1e-3


@torch.no_grad()
def test_blend_weights_interpolate_the_transform_linearly(lst):
    a, b, x = _images(8, (1, 3, 64, 64), (1, 3, 56, 72), (1, 3, 40, 48))
    b = b * 0.5
    (sa, ma), (sb, mb) = lst.encode_style(a).data, lst.encode_style(b).data
    blend = lst.encode_style([a, b], [1.0, 3.0])   # normalised to 0.25, 0.75
    torch.testing.assert_close(blend.data[0], 0.25 * sa + 0.75 * sb)
    torch.testing.assert_close(blend.data[1], 0.25 * ma + 0.75 * mb)
    fc = lst.encoder(x)["relu3_1"]
    t = lst.transform.transfer
    torch.testing.assert_close(t(fc, *blend.data), 0.25 * t(fc, sa, ma) + 0.75 * t(fc, sb, mb), atol=1e-4, rtol=1e-4)
    alone = lst.stylize(x, lst.encode_style(a))
    torch.testing.assert_close(lst.stylize(x, lst.encode_style([a, b], [1.0, 0.0])), alone)


def test_missing_or_tampered_model_files_fail_in_one_line(trained, tmp_path):
    path = trained[0]
    tensors, meta = load_file(path), weight_store.read_metadata(path)
    broken = {"missing": tmp_path / "nope.safetensors", "truncated": tmp_path / "truncated.safetensors",
              "other_arch": tmp_path / "arch.safetensors", "no_config": tmp_path / "config.safetensors",
              "wrong_shape": tmp_path / "shape.safetensors"}
    broken["truncated"].write_bytes(path.read_bytes()[:5000])
    save_file(tensors, broken["other_arch"], metadata={**meta, "arch": "johnson_transform"})
    save_file(tensors, broken["no_config"], metadata={k: v for k, v in meta.items() if k != "config"})
    save_file({**tensors, "compress.weight": tensors["compress.weight"][:16]}, broken["wrong_shape"], metadata=meta)
    needles = {"missing": "no such weights file", "truncated": "not a valid safetensors file",
               "other_arch": "holds a johnson_transform network, not lst_transform",
               "no_config": "metadata does not describe", "wrong_shape": "does not fit its own configuration"}
    for case, file in broken.items():
        with pytest.raises(BrushstreamError) as err:
            build("lst", model=str(file))
        assert needles[case] in str(err.value) and "\n" not in str(err.value), case
