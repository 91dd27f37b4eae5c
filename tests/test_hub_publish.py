"""Community styles on the Hub, against the loopback Hub (tests/hub_server.py) with huggingface-hub's real upload and
download code: publish with a model card, load pinned to a commit while the branch moves on, offline loads from the
cache, damaged downloads and pickles posing as safetensors refused in one line, search, and pinning the manifest."""
import importlib.util
import io
import json
import pickle
from pathlib import Path

import pytest
import torch
from PIL import Image

from brushstream.core.cli import main
from brushstream.core.errors import BrushstreamError
from brushstream.core.hub import weights as W

from .hub_server import COMMIT, HubServer

# huggingface-hub's LFS upload hands httpx a file object as data=, which httpx2 deprecates; not ours to change.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload:DeprecationWarning")

REPO, FILE = "someone/styles", "my_style.safetensors"
BRANCH_REF = f"hf://{REPO}/{FILE}"


# -- helpers -----------------------------------------------------------------------------------------------------

def _style_file(folder: Path, seed: int = 0, name: str = FILE, **meta) -> Path:
    """A small file as `brushstream train johnson` writes one (arch, recipe, styles, figures in its metadata)."""
    gen = torch.Generator().manual_seed(seed)
    path = folder / name
    W.save_weights(path, {"conv.weight": torch.randn(8, 3, 3, 3, generator=gen), "conv.bias": torch.zeros(8)},
                   {"arch": "johnson_transform", "recipe_name": "johnson", "styles": ["starry_night"],
                    "config": {"arch": "johnson_transform", "width": 8, "residual_blocks": 1},
                    "recipe": {"batch": 4, "steps": 20, "content_dir": "/home/someone/photos/content",
                               "style": ["/home/someone/paintings/starry_night.jpg"]},
                    "steps": "20", "final_losses": "content=1.2,style=3.4,total=4.6",
                    "metrics": {"gram_ratio_vs_peer": 0.97}, **meta})
    return path


def _style_image(folder: Path) -> Path:
    path = folder / "starry_night.png"
    Image.new("RGB", (640, 480), (30, 60, 160)).save(path)
    return path


def _publish(capsys, *argv) -> dict[str, str]:
    """Run `brushstream weights publish ...`; its stdout lines as {'commit': ..., 'card': ..., 'pinned': ...}."""
    assert main(["weights", "publish", *map(str, argv)]) == 0, capsys.readouterr().err
    return {k: v.split("\t")[0] for k, _, v in (line.partition("\t") for line in capsys.readouterr().out.splitlines())}


def _cached_files(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if (p.is_file() or p.is_symlink()) and
            ("blobs" in p.parts or "snapshots" in p.parts)]


def _one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def _fresh_cache(tmp_path, monkeypatch, name: str) -> Path:
    cache = tmp_path / name
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def _go_offline(monkeypatch, offline: bool = True) -> None:
    from huggingface_hub import constants
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)


def _go_online(monkeypatch) -> None:
    _go_offline(monkeypatch, False)


# -- publish -----------------------------------------------------------------------------------------------------

def test_publish_then_download_into_a_fresh_cache_gives_the_same_bytes_and_a_card(empty_hub, tmp_path, monkeypatch,
                                                                                  capsys):
    src = _style_file(tmp_path)
    out = _publish(capsys, src, "--repo", REPO, "--licence", "MIT", "--style", _style_image(tmp_path), "--private")
    commit, card_commit, pinned = out["commit"], out["card"], out["pinned"]
    sha = W.sha256_file(src)
    assert pinned == f"hf://{REPO}@{commit}/{FILE}#sha256={sha}"
    assert empty_hub.head(REPO) == card_commit != commit           # the card names the file's commit, so it follows
    assert empty_hub.file_at(REPO, commit, FILE) == src.read_bytes() and empty_hub.repos[REPO].private

    cache = _fresh_cache(tmp_path, monkeypatch, "fresh")
    got = W.resolve(pinned)
    assert got.read_bytes() == src.read_bytes() and got.is_relative_to(cache)

    card = empty_hub.file_at(REPO, "main", "README.md").decode()
    assert card.startswith("---\nlicense: mit\nlibrary_name: brushstream\n")
    for text in ("johnson", "**MIT**", f"--method johnson --model {pinned}", "paints: starry_night",
                 "gram_ratio_vs_peer", "content=1.2,style=3.4", "![starry_night](thumbnails/my_style/starry_night.jpg)"):
        assert text in card, text
    assert "/home/someone" not in card and '"content_dir": "content"' in card   # no folder of the trainer's
    with Image.open(io.BytesIO(empty_hub.file_at(REPO, commit, "thumbnails/my_style/starry_night.jpg"))) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == 256


def test_publish_to_a_branch_and_a_second_file_keeps_the_first_files_card_section(empty_hub, tmp_path, capsys):
    _publish(capsys, _style_file(tmp_path), "--repo", REPO, "--licence", "MIT")
    main_head = empty_hub.head(REPO)
    other = _style_file(tmp_path, seed=1, name="other.safetensors", styles=["udnie"], licence="CC-BY-4.0")
    out = _publish(capsys, other, "--repo", REPO, "--revision", "dev")
    assert empty_hub.head(REPO) == main_head and empty_hub.head(REPO, "dev") == out["card"]
    card = empty_hub.file_at(REPO, "dev", "README.md").decode()
    assert "## my_style" in card and "## other" in card and "license: other" in card and "CC-BY-4.0" in card
    assert f"hf://{REPO}@{out['commit']}/other.safetensors" in card


# -- pinned references while the branch moves --------------------------------------------------------------------

def test_a_pinned_reference_keeps_the_old_bytes_after_the_branch_moves(empty_hub, tmp_path, monkeypatch, capsys):
    (tmp_path / "v1").mkdir(), (tmp_path / "v2").mkdir()
    v1 = _style_file(tmp_path / "v1", seed=1)
    first = _publish(capsys, v1, "--repo", REPO, "--licence", "MIT")
    assert main(["weights", "pull", BRANCH_REF]) == 0            # the branch, pinned on the way
    pulled = capsys.readouterr()
    assert pulled.out.strip() == f"hf://{REPO}@{first['card']}/{FILE}#sha256={W.sha256_file(v1)}"
    assert f"commit {first['card']}" in pulled.err

    v2 = _style_file(tmp_path / "v2", seed=2)
    second = _publish(capsys, v2, "--repo", REPO, "--licence", "MIT")   # upstream moves main
    assert second["commit"] != first["commit"] and v1.read_bytes() != v2.read_bytes()

    asked = len(empty_hub.requests)
    assert W.resolve(pulled.out.strip()).read_bytes() == v1.read_bytes()
    assert len(empty_hub.requests) == asked                       # a cached commit is answered by the cache
    assert W.resolve(first["pinned"]).read_bytes() == v1.read_bytes()   # the file's own commit: asked once
    assert W.resolve(first["pinned"]).read_bytes() == v1.read_bytes() and len(empty_hub.requests) == asked + 1
    assert W.resolve(BRANCH_REF).read_bytes() == v2.read_bytes()  # the branch is asked, and moved
    _fresh_cache(tmp_path, monkeypatch, "fresh")
    assert W.resolve(first["pinned"]).read_bytes() == v1.read_bytes()
    assert W.resolve(BRANCH_REF).read_bytes() == v2.read_bytes()

    # A manifest entry whose hub.revision is a commit downloads that commit, not the branch's head.
    _fresh_cache(tmp_path, monkeypatch, "fresh2")
    entry = W.manifest_entry_for_file(v1, name="community_v1", method="johnson", licence="MIT", attribution="someone",
                                      convention="RGB 0-1", description="v1", hub_repo_id=REPO,
                                      hub_revision=first["commit"])
    W.write_manifest([entry], tmp_path / "m.json")
    manifest = W.load_manifest(tmp_path / "m.json")
    assert W.resolve("community_v1", manifest=manifest).read_bytes() == v1.read_bytes()
    assert W.verify("community_v1", manifest=manifest)[0][1] == "ok"


def test_a_branch_reference_says_which_commit_it_loaded(empty_hub, tmp_path, capsys, caplog):
    out = _publish(capsys, _style_file(tmp_path), "--repo", REPO, "--licence", "MIT")
    W.resolve(f"hf://{REPO}@main/{FILE}")
    said = [r.getMessage() for r in caplog.records if r.name == W.log.name]
    assert any(f"main is commit {out['card']}" in m and f"hf://{REPO}@{out['card']}/{FILE}#sha256=" in m for m in said)


# -- offline -------------------------------------------------------------------------------------------------------

def test_offline_a_cached_pinned_reference_loads_and_an_uncached_one_fails_in_one_line(empty_hub, tmp_path,
                                                                                        monkeypatch, capsys):
    src = _style_file(tmp_path)
    pinned = _publish(capsys, src, "--repo", REPO, "--licence", "MIT")["pinned"]
    assert main(["weights", "pull", pinned]) == 0 and capsys.readouterr().out.strip() == pinned
    other = _publish(capsys, _style_file(tmp_path, seed=5, name="other.safetensors"), "--repo", REPO,
                     "--licence", "MIT")["pinned"]                  # published, never fetched here
    _go_offline(monkeypatch)
    asked = len(empty_hub.requests)
    assert W.resolve(pinned).read_bytes() == src.read_bytes()
    with pytest.raises(BrushstreamError, match=r"not found \(Hub not tried \(offline") as err:
        W.resolve(other)
    assert other in _one_line(err)
    assert main(["weights", "pull", other]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert len(empty_hub.requests) == asked


# -- damaged and hostile files ---------------------------------------------------------------------------------------

def test_a_download_damaged_on_the_way_is_refused_in_one_line_and_nothing_stays_cached(empty_hub, tmp_path,
                                                                                       monkeypatch, capsys):
    """The Hub's metadata is true (its LFS sha256 names the blob) but other bytes of the same size arrive: still a
    whole safetensors file, so only the Hub's digest, checked here, tells."""
    src = _style_file(tmp_path)
    pinned = _publish(capsys, src, "--repo", REPO, "--licence", "MIT")["pinned"]
    good = src.read_bytes()
    empty_hub.in_transit[FILE] = good[:-1] + bytes([good[-1] ^ 0xFF])
    cache = _fresh_cache(tmp_path, monkeypatch, "fresh")
    with pytest.raises(BrushstreamError, match="sha256 mismatch .*damaged or tampered with on the way") as err:
        W.resolve(BRANCH_REF)
    _one_line(err)
    assert _cached_files(cache) == []
    with pytest.raises(BrushstreamError, match="sha256 mismatch"):
        W.resolve(pinned)
    assert _cached_files(cache) == []
    empty_hub.in_transit.clear()
    assert W.resolve(pinned).read_bytes() == good


def _hostile_pickle(marker: Path) -> bytes:
    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('unpickled')",))
    return pickle.dumps({"conv.weight": Payload()})


def test_a_pickle_named_safetensors_is_refused_in_one_line_and_never_unpickled(empty_hub, tmp_path, monkeypatch,
                                                                              capsys):
    marker = tmp_path / "was_unpickled"
    evil = _hostile_pickle(marker)
    empty_hub.add_repo("mallory/styles", {"evil.safetensors": evil})

    def refuse(*args, **kwargs):
        raise AssertionError("something unpickled")
    for mod, name in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
        monkeypatch.setattr(mod, name, refuse)

    with pytest.raises(BrushstreamError, match="not a valid safetensors file") as err:
        W.resolve("hf://mallory/styles/evil.safetensors")
    _one_line(err)
    assert _cached_files(Path(W._cache_dir())) == []

    assert main(["weights", "search", "--repo", "mallory/styles"]) == 0     # listed, header read, never loaded
    assert "not a safetensors file" in capsys.readouterr().out

    (tmp_path / "evil.safetensors").write_bytes(evil)
    asked = len(empty_hub.requests)
    assert main(["weights", "publish", str(tmp_path / "evil.safetensors"), "--repo", REPO, "--licence", "MIT"]) == 2
    err_text = capsys.readouterr().err
    assert "not a valid safetensors file" in err_text and err_text.count("\n") == 1
    assert len(empty_hub.requests) == asked and not marker.exists()


@pytest.mark.parametrize("case, message", [
    ("no_method", "names no method"), ("no_licence", "states no licence"), ("truncated", "truncated"),
    ("not_safetensors", "not a Brushstream weight file")])
def test_publish_refuses_what_is_not_a_brushstream_file_in_one_line(empty_hub, tmp_path, capsys, case, message):
    path, extra = tmp_path / FILE, ["--licence", "MIT"]
    if case == "no_method":
        W.save_weights(path, {"w": torch.zeros(2)}, {"note": "someone's tensors"})
    elif case == "no_licence":
        _style_file(tmp_path)
        extra = []
    elif case == "truncated":
        path.write_bytes(_style_file(tmp_path).read_bytes()[:-5])
    else:
        path = tmp_path / "model.pth"
        path.write_bytes(b"\x80\x04 not a safetensors file")
    assert main(["weights", "publish", str(path), "--repo", REPO, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert empty_hub.requests == []


# -- search --------------------------------------------------------------------------------------------------------

def test_search_lists_manifest_models_and_hub_files_with_their_styles(empty_hub, tmp_path, capsys):
    pinned = _publish(capsys, _style_file(tmp_path), "--repo", REPO, "--licence", "MIT")["pinned"]
    sent = len(empty_hub.sent)
    assert main(["weights", "search", "starry", "--repo", REPO]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    head = empty_hub.head(REPO)
    assert ["johnson_starry_night", "johnson,coherent", "starry_night", "MIT"] in rows         # the manifest
    assert [pinned.replace(pinned.split("@")[1].split("/")[0], head), "johnson", "starry_night", "MIT"] in rows
    size = len(empty_hub.file_at(REPO, "main", FILE))
    assert [n for path, n in empty_hub.sent[sent:] if path.endswith(FILE)] == [100_001 if size > 100_001 else size]
    assert main(["weights", "search", "udnie", "--repo", REPO]) == 0
    out = capsys.readouterr().out
    assert "johnson_rt_udnie" in out and "hf://" not in out
    assert main(["weights", "search", "--repo", "nobody/nothing"]) == 2
    err = capsys.readouterr().err
    assert "nobody/nothing" in err and "no such repository" in err and err.count("\n") == 1


# -- pinning the manifest -------------------------------------------------------------------------------------------

def _pin_tool():
    path = Path(__file__).resolve().parents[1] / "tools" / "pin_manifest_revisions.py"
    spec = importlib.util.spec_from_file_location("pin_manifest_revisions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pin_manifest_revisions_rewrites_a_copy_of_the_manifest_against_the_loopback_hub(tmp_path, monkeypatch,
                                                                                         capsys):
    """The loopback serves the bundled files as the project's repository (at COMMIT); the Hub-only files are not
    there, so pinning all fails and writes nothing, --partial pins the bundled ones, and a second run has nothing
    left that checks out."""
    tool = _pin_tool()
    copy = tmp_path / "weights_manifest.json"
    copy.write_bytes(W.MANIFEST_PATH.read_bytes())
    manifest = W.load_manifest(copy)
    with HubServer(W.BUNDLED_DIR, repo_id=W.DEFAULT_HUB_REPO) as server:
        assert tool.main(["--manifest", str(copy)]) == 1                # offline (the suite's default): one line each
        assert "offline" in capsys.readouterr().err
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
        _go_online(monkeypatch)
        assert tool.main(["--manifest", str(copy)]) == 1
        assert copy.read_bytes() == W.MANIFEST_PATH.read_bytes()       # all or nothing
        assert tool.main(["--manifest", str(copy), "--partial"]) == 1
        out = capsys.readouterr()
        pinned = W.load_manifest(copy)
        for name, entry in manifest.items():
            on_hub = (W.BUNDLED_DIR / entry.file).is_file()
            assert pinned[name].hub_revision == (COMMIT if on_hub else "main"), name
            assert pinned[name].sha256 == entry.sha256 and pinned[name].extra == entry.extra
            assert (f"{name}\tmain -> {COMMIT}" in out.out) == on_hub
        assert "not pinned: " in out.err and "rewritten" in out.err
        W.write_manifest(pinned, tmp_path / "again.json")                # the form write_manifest gives it
        assert (tmp_path / "again.json").read_bytes() == copy.read_bytes()
        tampered = sorted(n for n, e in manifest.items() if e.bundled)[0]
        good = (W.BUNDLED_DIR / manifest[tampered].file).read_bytes()
        server.overrides[manifest[tampered].file] = good[:-1] + bytes([good[-1] ^ 0xFF])   # same size, other bytes
        rows = json.loads(copy.read_text())["weights"]
        for row in rows:
            if row["name"] == tampered:
                row["hub"]["revision"] = "main"
        copy.write_text(json.dumps({"schema": 1, "weights": rows}, indent=2, ensure_ascii=False) + "\n")
        assert tool.main(["--manifest", str(copy), "--partial"]) == 1
        assert W.load_manifest(copy)[tampered].hub_revision == "main"     # a differing copy is never pinned
        assert f"{tampered}: " in capsys.readouterr().err
