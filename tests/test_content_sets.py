"""Content sets: training photos as a manifest entry, fetched through huggingface-hub (the loopback Hub here),
verified, unpacked once, and the one-line answer when there are none."""
import io
import tarfile
from pathlib import Path

import pytest

from brushstream.core.cli import main as cli_main
from brushstream.core.errors import BrushstreamError
from brushstream.core.hub.weights import load_manifest
from brushstream.core.train import content_sets
from brushstream.core.train.johnson_recipe import JohnsonRecipe
from brushstream.core.train.loop import fit

from .conftest import SHARED_DATA, SHARED_WEIGHTS
from .hub_server import HubServer

NAME = content_sets.DEFAULT_CONTENT_SET
STYLE = str(SHARED_DATA / "styles" / "starry_night.jpg")


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """The real content set, packed from the shared photos: the manifest's bytes, as its recipe says."""
    folder = tmp_path_factory.mktemp("hub_root")
    content_sets.pack(SHARED_DATA / "content", folder / load_manifest()[NAME].file)
    return folder


@pytest.fixture
def online(packed, tmp_path, monkeypatch, hf_env):
    monkeypatch.setenv(content_sets.CACHE_ENV, str(tmp_path / "bs_cache"))
    with HubServer(packed) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def test_the_recipe_reproduces_the_manifest_s_sha256(packed):
    from brushstream.core.hub.weights import sha256_file
    entry = load_manifest()[NAME]
    path = packed / entry.file
    assert (path.stat().st_size, sha256_file(path)) == (entry.bytes, entry.sha256)
    assert entry.method == "content_set" and entry.licence and "BSDS500" in entry.attribution


def test_a_recipe_without_content_dir_fetches_verifies_and_unpacks_the_set_once(online, tmp_path, monkeypatch):
    monkeypatch.setenv("BRUSHSTREAM_WEIGHTS_DIR", str(SHARED_WEIGHTS))   # the loss network; the set is not there
    recipe = JohnsonRecipe(style=(STYLE,), size=32, steps=2, batch=2, width=4, residual_blocks=1, style_size=64)
    photos = sorted(p.name for p in Path(recipe.photos()).iterdir())
    assert photos == sorted(p.name for p in (SHARED_DATA / "content").glob("*.jpg"))
    sent = online.bodies_sent
    assert sent == 1
    result = fit(recipe, tmp_path / "cs.safetensors", progress=False, precision="fp32")
    assert result.steps == 2 and online.bodies_sent == sent                # unpacked once, reused
    assert not [p for p in (tmp_path / "bs_cache" / "content_sets").iterdir() if p.name.startswith(".")]


def test_a_tampered_set_is_refused_and_leaves_nothing_behind(online, tmp_path):
    online.overrides[load_manifest()[NAME].file] = b"x" * 1000
    with pytest.raises(BrushstreamError, match="--content-dir"):
        content_sets.content_set_folder(NAME)
    assert not (tmp_path / "bs_cache" / "content_sets").exists() or \
        not list((tmp_path / "bs_cache" / "content_sets").iterdir())


def test_offline_without_the_set_train_asks_for_content_dir_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(content_sets.CACHE_ENV, str(tmp_path / "bs_cache"))
    code = cli_main(["train", "johnson", "--style", STYLE, "-o", str(tmp_path / "x.safetensors")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "give --content-dir FOLDER" in err[0] and NAME in err[0]
    assert not (tmp_path / "x.safetensors").exists() and not (tmp_path / "x.ckpt").exists()


def test_an_unknown_content_set_names_the_known_ones(tmp_path, monkeypatch):
    monkeypatch.setenv(content_sets.CACHE_ENV, str(tmp_path / "bs_cache"))
    with pytest.raises(BrushstreamError, match=f"no such content set.*known: {NAME}"):
        content_sets.content_set_folder("coco_full")
    with pytest.raises(BrushstreamError, match="no such content set"):
        content_sets.content_set_folder("vgg16_imagenet_caffe")   # a weight file is not a content set


@pytest.mark.parametrize("member", ["../escape.jpg", "sub/dir.jpg", "notes.txt", "link.jpg"])
def test_unpacking_takes_flat_photo_files_only(tmp_path, member):
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo(member)
        if member == "link.jpg":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
    target = tmp_path / "out" / "set"
    with pytest.raises(BrushstreamError, match="is not a photo file"):
        content_sets._unpack(archive, target)
    assert not target.exists() and not list((tmp_path / "out").iterdir())
    assert not (tmp_path / "escape.jpg").exists()


def test_a_killed_unpack_leaves_no_folder_that_looks_finished(tmp_path, monkeypatch):
    archive = content_sets.pack(SHARED_DATA / "content_eval", tmp_path / "eval.tar")
    target = tmp_path / "cache" / "set"
    calls = []

    def dying_copy(src, dst):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt   # Ctrl-C mid-unpack
        dst.write(src.read())
    monkeypatch.setattr(content_sets.shutil, "copyfileobj", dying_copy)
    with pytest.raises(KeyboardInterrupt):
        content_sets._unpack(archive, target)
    assert not target.exists() and not list(target.parent.iterdir())
    monkeypatch.undo()
    content_sets._unpack(archive, target)
    assert len(list(target.iterdir())) == len(list((SHARED_DATA / "content_eval").glob("*.jpg")))
