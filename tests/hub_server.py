"""A loopback stand-in for the Hugging Face Hub's file endpoints, so tests run huggingface-hub's real
download code (hf_hub_download, version 2.x) against files in a local folder.

What it speaks, as huggingface-hub reads it (file_download.get_hf_file_metadata, utils/_http.py):

* ``HEAD|GET /{repo_id}/resolve/{revision}/{filename}`` on the "Hub" origin.
  - LFS mode (default, what the real Hub does for weight files): ``302`` with ``Location`` on a second
    loopback origin (the "CDN"), ``X-Repo-Commit``, ``X-Linked-Etag: "<sha256>"``, ``X-Linked-Size``
    and an ``ETag`` of the pointer. A different origin makes huggingface-hub stop at this response and
    take the metadata from it, then GET the file from the CDN, exactly as with the real Hub.
  - plain mode (``lfs=False``, a small git file): ``200`` with ``ETag: "<git blob sha1>"``,
    ``X-Repo-Commit``, ``Content-Length``, ``Accept-Ranges``; ``Range: bytes=N-`` gives ``206`` + ``Content-Range``.
* ``GET /lfs/{sha256}/{filename}`` on the CDN origin: the bytes, with Range support.
* Errors carry ``X-Error-Code`` so huggingface-hub raises its typed errors: ``EntryNotFound`` (404, with
  X-Repo-Commit), ``RevisionNotFound`` (404), ``RepoNotFound`` (401, like the Hub for unknown repos).

``overrides[filename] = bytes`` serves other bytes under a name, metadata included (a tampered repo);
``in_transit[filename] = bytes`` keeps the true metadata but sends other bytes from the CDN (corruption
on the way). ``requests`` lists every (method, path) received, ``downloads()`` counts file bodies sent.
"""
from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REVISIONS = ("main", COMMIT)


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubServer:
    """Two loopback HTTP servers (Hub and CDN) in daemon threads; use as a context manager."""

    def __init__(self, root: Path, repo_id: str = "brushstream/brushstream-weights", *, lfs: bool = True):
        self.root, self.repo_id, self.lfs = Path(root), repo_id, lfs
        self.overrides: dict[str, bytes] = {}
        self.in_transit: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.bodies_sent = 0
        self._lock = threading.Lock()
        self._hub = self._start(self._hub_response)
        self._cdn = self._start(self._cdn_response)
        self.url = self._origin(self._hub)
        self.cdn_url = self._origin(self._cdn)

    # -- plumbing ------------------------------------------------------------------------------------

    @staticmethod
    def _origin(httpd) -> str:
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    def _start(self, respond):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _handle(self):
                with server._lock:
                    server.requests.append((self.command, self.path))
                status, headers, body = respond(unquote(self.path.split("?")[0]), self.headers.get("Range"))
                self.send_response(status)
                for k, v in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command == "GET" and body:
                    with server._lock:
                        server.bodies_sent += 1
                    self.wfile.write(body)

            do_HEAD = do_GET = _handle

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return httpd

    def _data(self, filename: str) -> bytes | None:
        if filename in self.overrides:
            return self.overrides[filename]
        path = self.root / filename
        return path.read_bytes() if filename and "/" not in filename and path.is_file() else None

    @staticmethod
    def _error(status: int, code: str, **headers) -> tuple[int, dict, bytes]:
        return status, {"X-Error-Code": code, "X-Error-Message": code, **headers}, b""

    @staticmethod
    def _body(data: bytes, rng: str | None, headers: dict) -> tuple[int, dict, bytes]:
        """200 with the bytes, or 206 for ``Range: bytes=N-`` / ``bytes=N-M`` (huggingface-hub resumes that way)."""
        headers = {**headers, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if not (rng and rng.startswith("bytes=")):
            return 200, headers, data
        first, _, last = rng[6:].partition("-")
        start, stop = int(first or 0), min(int(last) + 1 if last else len(data), len(data))
        return 206, {**headers, "Content-Range": f"bytes {start}-{stop - 1}/{len(data)}"}, data[start:stop]

    # -- the two origins ---------------------------------------------------------------------------------

    def _hub_response(self, path: str, rng: str | None) -> tuple[int, dict, bytes]:
        repo_part, sep, rest = path.lstrip("/").partition("/resolve/")
        if not sep:
            return self._error(404, "NotFound")
        if repo_part != self.repo_id:
            return self._error(401, "RepoNotFound")
        revision, _, filename = rest.partition("/")
        if revision not in REVISIONS:
            return self._error(404, "RevisionNotFound")
        data = self._data(filename)
        if data is None:
            return self._error(404, "EntryNotFound", **{"X-Repo-Commit": COMMIT})
        if not self.lfs:
            return self._body(data, rng, {"X-Repo-Commit": COMMIT, "ETag": f'"{_git_blob_sha1(data)}"'})
        sha256 = hashlib.sha256(data).hexdigest()
        return 302, {"Location": f"{self.cdn_url}/lfs/{sha256}/{quote(filename)}", "X-Repo-Commit": COMMIT,
                     "X-Linked-Etag": f'"{sha256}"', "X-Linked-Size": str(len(data)),
                     "ETag": f'"{_git_blob_sha1(data)}"'}, b""

    def _cdn_response(self, path: str, rng: str | None) -> tuple[int, dict, bytes]:
        _, lfs, sha256, filename = (path.split("/", 3) + ["", "", ""])[:4]
        data = self._data(filename)
        if lfs != "lfs" or data is None or hashlib.sha256(data).hexdigest() != sha256:
            return 404, {}, b""  # a CDN knows nothing of Hub error codes
        return self._body(self.in_transit.get(filename, data), rng, {"ETag": f'"{sha256}"'})

    # -- what tests use ------------------------------------------------------------------------------------

    def downloads(self) -> int:
        """File bodies sent (from the CDN in LFS mode, from resolve URLs in plain mode)."""
        return self.bodies_sent

    def stop(self) -> None:
        for httpd in (self._hub, self._cdn):
            httpd.shutdown()
            httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
