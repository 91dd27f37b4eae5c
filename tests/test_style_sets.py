"""Style sets: training paintings as a manifest entry (method style_set), fetched through huggingface-hub (the
loopback Hub here), verified and unpacked once like a content set, joined to --style-dir's images by the MicroAST
recipe; and the record behind the published set."""
import json
import re
import shutil

import pytest
import torch

from brushstream.core.errors import BrushstreamError
from brushstream.core.hub import weights as W
from brushstream.core.train import content_sets
from brushstream.core.train.catalogue import get_recipe
from brushstream.core.train.data import UNSEEN_STYLES, training_style_paths

from .conftest import SHARED_DATA, SHARED_WEIGHTS
from .hub_server import HubServer

NAME = "tiny_paintings"
PAINTINGS = ("composition_vii", "starry_night", "udnie")
PUBLISHED = "public_domain_paintings"


@pytest.fixture
def online(tmp_path, monkeypatch, hf_env):
    """A loopback Hub serving a three-painting style set, and a manifest that lists it beside the real entries."""
    folder, hub_root = tmp_path / "paintings", tmp_path / "hub_root"
    folder.mkdir()
    for name in PAINTINGS:
        shutil.copy(SHARED_DATA / "styles" / f"{name}.jpg", folder)
    archive = content_sets.pack(folder, hub_root / f"{NAME}.tar")
    manifest = tmp_path / "weights_manifest.json"
    shutil.copy(W.MANIFEST_PATH, manifest)
    W.register(archive, manifest, name=NAME, method="style_set", role="dataset", licence="public domain",
               attribution="three test paintings", convention="an uncompressed tar of JPEG paintings",
               description="a test style set")
    monkeypatch.setattr(content_sets, "load_manifest", lambda: W.load_manifest(manifest))
    monkeypatch.setenv(content_sets.CACHE_ENV, str(tmp_path / "bs_cache"))
    with HubServer(hub_root) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def test_a_style_set_is_fetched_verified_and_unpacked_once(online, tmp_path):
    folder = content_sets.style_set_folder(NAME)
    assert sorted(p.name for p in folder.iterdir()) == [f"{n}.jpg" for n in PAINTINGS]
    assert folder.parent == tmp_path / "bs_cache" / "style_sets" and folder.name.startswith(f"{NAME}-")
    asked = len(online.requests)
    assert online.bodies_sent == 1
    assert content_sets.style_set_folder(NAME) == folder and len(online.requests) == asked   # the cache answers
    with pytest.raises(BrushstreamError, match="no such content set"):   # the kinds do not mix
        content_sets.content_set_folder(NAME)


def test_a_corrupted_style_set_is_refused_in_one_line_and_leaves_nothing(online, tmp_path):
    online.overrides[f"{NAME}.tar"] = b"x" * 1000
    with pytest.raises(BrushstreamError) as err:
        content_sets.style_set_folder(NAME)
    assert "\n" not in str(err.value) and str(err.value).startswith(f"--style-set {NAME}: ")
    assert "--style-dir" in str(err.value)
    cache = tmp_path / "bs_cache" / "style_sets"
    assert not cache.exists() or not list(cache.iterdir())


def test_an_unknown_style_set_is_one_line_naming_the_flag_and_the_known_sets(tmp_path, monkeypatch):
    monkeypatch.setenv(content_sets.CACHE_ENV, str(tmp_path / "bs_cache"))
    with pytest.raises(BrushstreamError, match=f"^--style-set wikiart: no such style set.*known: {PUBLISHED}"):
        content_sets.style_set_folder("wikiart")
    with pytest.raises(BrushstreamError, match="no such style set"):   # a content set is not a style set
        content_sets.style_set_folder(content_sets.DEFAULT_CONTENT_SET)
    with pytest.raises(BrushstreamError, match="--style-set wikiart"):
        training_style_paths((), "", UNSEEN_STYLES, "wikiart")


def test_the_recipe_trains_on_style_dir_and_the_set_in_file_name_order_without_held_out(online, tmp_path,
                                                                                         monkeypatch):
    monkeypatch.setenv("BRUSHSTREAM_WEIGHTS_DIR", str(SHARED_WEIGHTS))   # the loss network; the set is not there
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("candy", "mondrian"):   # candy is held out
        shutil.copy(SHARED_DATA / "styles" / f"{name}.jpg", mine)
    recipe = get_recipe("microast")(style_dir=str(mine), style_set=NAME, style_size=64, size=32)
    recipe.setup(torch.device("cpu"))
    assert recipe.style_names() == ["composition_vii", "mondrian", "starry_night", "udnie"]
    assert len(recipe.styles) == 4 and max(recipe.styles[1].shape[-2:]) == 64
    empty = tmp_path / "empty"
    empty.mkdir()   # an empty --style-dir beside a set is fine; the set alone too
    assert [p.stem for p in training_style_paths((), str(empty), UNSEEN_STYLES, NAME)] == list(PAINTINGS)
    assert [p.stem for p in training_style_paths((), "", ("udnie",), NAME)] == list(PAINTINGS[:2])


def test_the_published_set_is_reproduced_from_its_record_and_every_painting_is_public_domain():
    entry = W.load_manifest()[PUBLISHED]
    record = "assets/datasets/public_domain_paintings.json"
    assert (entry.method, entry.role, entry.bundled) == ("style_set", "dataset", False)
    assert record in entry.extra["recipe"]["command"] and record in entry.licence
    paintings = json.loads((W.PACKAGE_ROOT / record).read_text())
    names = [p["file"] for p in paintings]
    assert names == sorted(names) and len(set(names)) == len(names)
    assert entry.attribution.startswith(f"{len(paintings)} paintings")
    for p in paintings:
        assert p["licence_reason"] and isinstance(p["artist_death_year"], int), p["file"]
        assert p["artist_death_year"] < 1955, p["file"]
        assert p["repo"].count("/") == 1 and p["path"] and re.fullmatch("[0-9a-f]{40}", p["commit"]), p["file"]
