"""Training: the loss goes down, a resumed run equals an uninterrupted one, the file rebuilds the network."""
import shutil

import pytest
import torch

from brushstream.core.hub.weights import load_state_dict
from brushstream.core.train.decoder_recipe import DecoderRecipe, load_decoder_file
from brushstream.core.train.loop import TrainingStopped, fit

from .conftest import SHARED_DATA


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    content = root / "content"
    content.mkdir()
    for p in sorted((SHARED_DATA / "content").glob("*.jpg"))[:4]:
        shutil.copy(p, content)
    evaluation = root / "content_eval"
    evaluation.mkdir()
    shutil.copy(SHARED_DATA / "content_eval" / "skimage_chelsea.jpg", evaluation)
    return content


def _recipe(data, steps):
    return DecoderRecipe(level="relu1_1", content_dir=str(data), steps=steps, batch=2, size=64, lr=3e-3)


def test_decoder_training_lowers_the_loss_and_writes_a_self_describing_file(tiny_data, tmp_path):
    out = tmp_path / "dec.safetensors"
    ckpt = tmp_path / "dec.ckpt"
    fit(_recipe(tiny_data, 40), out, checkpoint=ckpt, progress=False)
    losses = [h["total"] for h in torch.load(ckpt, weights_only=True)["history"]]
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    tensors, meta = load_state_dict(out)
    assert meta["level"] == "relu1_1" and "recipe" in meta and float(meta["psnr_content_eval"]) > 10
    assert load_decoder_file(out).level == "relu1_1"


def test_interrupted_then_resumed_training_equals_an_uninterrupted_run(tiny_data, tmp_path):
    straight, resumed = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    fit(_recipe(tiny_data, 12), straight, progress=False)
    ckpt = tmp_path / "b.ckpt"
    with pytest.raises(TrainingStopped):
        fit(_recipe(tiny_data, 12), resumed, checkpoint=ckpt, progress=False, checkpoint_every=3,
            callback=lambda p: p.step != 7)
    assert not resumed.exists()
    assert torch.load(ckpt, weights_only=True)["step"] == 7
    fit(_recipe(tiny_data, 12), resumed, checkpoint=ckpt, progress=False, checkpoint_every=3, resume=True)
    a, _ = load_state_dict(straight)
    b, _ = load_state_dict(resumed)
    assert torch.load(ckpt, weights_only=True)["step"] == 12
    for k in a:
        assert torch.equal(a[k], b[k])
