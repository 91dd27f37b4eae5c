"""A loopback stand-in for the Hugging Face Hub's file endpoint, so tests run the real huggingface-hub
download code: HEAD/GET /{repo_id}/resolve/{revision}/{filename} served from a local folder.

It sends what huggingface-hub reads from the Hub: X-Repo-Commit, ETag (the file's sha256, as the Hub
does for LFS files), Content-Length, and X-Error-Code: EntryNotFound on 404. ``overrides`` lets a test
serve different bytes under a name (a tampered file); ``requests`` counts what was asked for.
"""
from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubServer:
    def __init__(self, root: Path, repo_id: str = "brushstream/brushstream-weights"):
        self.root, self.repo_id = Path(root), repo_id
        self.overrides: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _serve(self, with_body: bool):
                server.requests.append((self.command, self.path))
                prefix = f"/{server.repo_id}/resolve/"
                path = unquote(self.path.split("?")[0])
                data = None
                if path.startswith(prefix):
                    _revision, _, filename = path[len(prefix):].partition("/")
                    data = server.overrides.get(filename)
                    if data is None and filename and (server.root / filename).is_file():
                        data = (server.root / filename).read_bytes()
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("X-Error-Message", "Entry not found")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                rng = self.headers.get("Range")
                if with_body and rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0] or 0)
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if with_body:
                    self.wfile.write(data[start:])

            def do_HEAD(self):
                self._serve(False)

            def do_GET(self):
                self._serve(True)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def downloads(self) -> int:
        return sum(1 for method, _ in self.requests if method == "GET")

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
