"""Weights: manifest truth, resolution order, the real huggingface-hub download against a loopback Hub,
and refusal of tampered, truncated, missing and non-safetensors files."""
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from brushstream.core import weights as W
from brushstream.core.errors import BrushstreamError

from .conftest import SHARED_WEIGHTS

DECODER = "vgg19_normalised_r31_decoder.safetensors"


def test_manifest_entries_match_their_files_and_say_where_they_come_from():
    manifest = W.load_manifest()
    assert {"vgg16_imagenet_caffe", "vgg19_normalised_r31_encoder", "vgg19_normalised_r31_decoder",
            "vgg19_normalised_r21_decoder", "vgg19_normalised_r11_decoder"} <= set(manifest)
    for entry in manifest.values():
        path = (W.BUNDLED_DIR if entry.bundled else SHARED_WEIGHTS) / entry.file
        assert path.stat().st_size == entry.bytes, entry.name
        assert W.sha256_file(path) == entry.sha256, entry.name
        assert entry.licence and entry.attribution and entry.convention and entry.hub_repo_id and entry.hub_revision
        assert not entry.bundled or entry.bytes < 5_000_000  # bundled files stay small


def test_bundled_weights_resolve_with_no_network(hub):
    path = W.resolve("vgg19_normalised_r31_encoder")
    assert path.parent == W.BUNDLED_DIR
    assert hub.requests == []


def _hub_only_manifest(tmp_path, name="remote_decoder", file=DECODER, **changes):
    """A manifest whose one entry is not bundled, so it must come from the Hub."""
    entry = W.manifest_entry_for_file(SHARED_WEIGHTS / file, name=name, method="test", licence="BSD-2-Clause",
                                      attribution="test", convention="test", description="test")
    entry.update(changes)
    path = tmp_path / "manifest.json"
    W.write_manifest([entry], path)
    return W.load_manifest(path)


def test_download_through_the_hub_protocol_then_the_cache(hub, tmp_path):
    manifest = _hub_only_manifest(tmp_path)
    path = W.resolve("remote_decoder", manifest=manifest)
    assert hub.downloads() == 1
    assert W.sha256_file(path) == manifest["remote_decoder"].sha256
    assert str(path).startswith(os.environ["HF_HUB_CACHE"])
    tensors, _ = W.load_state_dict(str(path))
    assert tensors["conv11.weight"].shape == (3, 64, 3, 3)
    again = W.resolve("remote_decoder", manifest=manifest)
    assert again == path and hub.downloads() == 1  # second time from the cache, no new download
    assert W.verify("remote_decoder", manifest=manifest) == [("remote_decoder", "ok", str(path))]


def test_tampered_download_is_refused_and_leaves_nothing_in_the_cache(hub, tmp_path):
    manifest = _hub_only_manifest(tmp_path)
    good = (SHARED_WEIGHTS / DECODER).read_bytes()
    hub.overrides[DECODER] = good[:1000] + bytes([good[1000] ^ 0xFF]) + good[1001:]
    with pytest.raises(BrushstreamError, match="sha256 mismatch") as err:
        W.resolve("remote_decoder", manifest=manifest)
    assert "\n" not in str(err.value)
    left = [p for p in Path(os.environ["HF_HUB_CACHE"]).rglob("*") if p.is_file() or p.is_symlink()]
    # no snapshot entry, no blob: only huggingface-hub's empty lock files and refs may remain
    assert not [p for p in left if p.name == DECODER or "blobs" in p.parts and not p.name.endswith(".lock")], left
    assert sum(p.stat().st_size for p in left if p.is_file()) < 1000


def test_truncated_download_is_refused(hub, tmp_path):
    manifest = _hub_only_manifest(tmp_path)
    hub.overrides[DECODER] = (SHARED_WEIGHTS / DECODER).read_bytes()[:5000]
    with pytest.raises(BrushstreamError, match="truncated or corrupt"):
        W.resolve("remote_decoder", manifest=manifest)


def test_offline_with_an_empty_cache_says_how_to_fix_it(hub, tmp_path, monkeypatch):
    manifest = _hub_only_manifest(tmp_path)
    with pytest.raises(BrushstreamError, match="not found in .*BRUSHSTREAM_WEIGHTS_DIR") as err:
        W.resolve("remote_decoder", manifest=manifest, local_files_only=True)
    assert hub.requests == [] and "weights pull remote_decoder" in str(err.value)


def test_missing_on_the_hub_and_unknown_names(hub, tmp_path):
    manifest = _hub_only_manifest(tmp_path, hub={"repo_id": "brushstream/brushstream-weights",
                                                 "filename": "nope.safetensors", "revision": "main"})
    with pytest.raises(BrushstreamError, match="not found in"):
        W.resolve("remote_decoder", manifest=manifest)
    with pytest.raises(BrushstreamError, match="unknown weights 'no_such_model'; known: remote_decoder"):
        W.resolve("no_such_model", manifest=manifest)


def test_environment_directory_is_used_and_verified(tmp_path, monkeypatch):
    manifest = _hub_only_manifest(tmp_path)
    folder = tmp_path / "weights"
    folder.mkdir()
    shutil.copy(SHARED_WEIGHTS / DECODER, folder / DECODER)
    monkeypatch.setenv("BRUSHSTREAM_WEIGHTS_DIR", str(folder))
    assert W.resolve("remote_decoder", manifest=manifest) == folder / DECODER
    data = bytearray((folder / DECODER).read_bytes())
    data[-1] ^= 0xFF
    (folder / DECODER).write_bytes(bytes(data))
    with pytest.raises(BrushstreamError, match="sha256 mismatch"):
        W.resolve("remote_decoder", manifest=manifest)
    assert W.verify("remote_decoder", manifest=manifest)[0][1] == "MISMATCH"


def test_explicit_copy_of_a_known_file_is_verified(tmp_path):
    bad = tmp_path / DECODER
    bad.write_bytes((SHARED_WEIGHTS / DECODER).read_bytes()[:-10] + b"0123456789")
    with pytest.raises(BrushstreamError, match="sha256 mismatch"):
        W.load_state_dict(bad)


def test_save_weights_is_atomic_and_round_trips_metadata(tmp_path):
    out = tmp_path / "model.safetensors"
    digest = W.save_weights(out, {"w": torch.ones(2, 3)}, {"arch": "test", "config": {"levels": [1, 2]}})
    assert digest == W.sha256_file(out)
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    tensors, meta = W.load_state_dict(out)
    assert torch.equal(tensors["w"], torch.ones(2, 3))
    assert meta["arch"] == "test" and json.loads(meta["config"]) == {"levels": [1, 2]}


def test_non_safetensors_file_is_refused_in_one_line(tmp_path):
    fake = tmp_path / "model.safetensors"
    fake.write_bytes(b"\x80\x04pickle-ish bytes that are not safetensors")
    with pytest.raises(BrushstreamError, match="not a valid safetensors file") as err:
        W.load_state_dict(fake)
    assert "\n" not in str(err.value)


def test_cli_pull_downloads_the_backbone_from_the_hub_and_verify_reports_it(hub, capsys):
    from brushstream.core.cli import main

    assert main(["weights", "pull", "vgg16_imagenet_caffe"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert hub.downloads() == 1 and path.stat().st_size == W.load_manifest()["vgg16_imagenet_caffe"].bytes
    assert main(["weights", "verify", "vgg16_imagenet_caffe"]) == 0
    assert capsys.readouterr().out.split("\t")[1] == "ok"
