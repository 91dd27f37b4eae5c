"""A loopback stand-in for the Hugging Face Hub, so tests run huggingface-hub's real code (version 2.x:
hf_hub_download, and HfApi's create_repo / create_commit / upload_file / model_info / list_repo_tree /
parse_safetensors_file_metadata / create_branch) against repositories held in memory or in a local folder.

Repositories. ``HubServer(root, repo_id)`` serves the files of the folder ``root`` (read at request time, top level
only) as ``repo_id`` at one fixed commit, ``COMMIT``, which branch ``main`` points at. ``HubServer()`` starts with no
repository. More repositories come from the upload API (below) or from ``add_repo`` / ``commit`` in a test. Every
commit made here gets a real 40-hex id (sha1 of its parent, its files' sha256 and a counter) and moves its branch;
older commits stay readable by id, as on the Hub. Private repositories are recorded, but nothing asks for a token.

What it speaks, as huggingface-hub sends it (file_download.py, hf_api.py, _commit_api.py, lfs.py, utils/_http.py),
on two loopback origins: the "Hub" (``url``) and a "CDN" (``cdn_url``):

* ``HEAD|GET /{repo_id}/resolve/{revision}/{path}`` (Hub; revision a branch, tag or commit id):
  - an LFS file (by default every file of a folder repository, what the real Hub does for weight files; in uploaded
    repositories what preupload chose, below): ``302`` with ``Location`` on the CDN, ``X-Repo-Commit``,
    ``X-Linked-Etag: "<sha256>"``, ``X-Linked-Size`` and an ``ETag`` of the pointer. A different origin makes
    huggingface-hub stop at this response and take the metadata from it, then GET the file from the CDN, exactly as
    with the real Hub.
  - a regular git file (``lfs=False`` for a folder repository, or a small text file such as README.md): ``200`` with
    ``ETag: "<git blob sha1>"``, ``X-Repo-Commit``, ``Content-Length``, ``Accept-Ranges``; ``Range: bytes=N-M``
    gives ``206`` + ``Content-Range`` (huggingface-hub resumes, and reads safetensors headers, that way).
* ``GET /lfs/{sha256}/{path}`` (CDN): the bytes, with Range support.
* ``GET /api/models/{repo_id}`` and ``/api/models/{repo_id}/revision/{revision}`` (model_info / repo_info): ``id``,
  ``sha`` (the commit the revision is at), ``private``, ``siblings`` (with ``size``/``blobId``/``lfs`` if ``blobs``).
* ``GET /api/models/{repo_id}/tree/{revision}[/{path}]?recursive=&expand=`` (list_repo_tree, list_repo_files): files
  (``oid`` = git blob sha1, ``size``, ``lfs: {oid: sha256, size, pointerSize}``) and directories, one page.
* ``GET /api/models/{repo_id}/refs`` (list_repo_refs): branches and tags with their commits.
* ``POST /api/repos/create`` (create_repo; JSON ``name``, ``organization``, ``visibility``): ``200 {"url"}`` and an
  initial commit holding ``.gitattributes``, or ``409`` if it exists (create_repo(exist_ok=True) accepts that).
* ``POST /api/validate-yaml`` (create_commit does this before committing a README.md): ``{"errors": [], ...}``.
* ``POST /api/models/{repo_id}/branch/{branch}`` (create_branch; JSON ``startingPoint``): ``409`` if it exists.
* ``POST /api/models/{repo_id}/preupload/{revision}`` (JSON ``files: [{path, sample, size}]``): each file's
  ``uploadMode`` (``lfs`` for weight/image/archive suffixes or a sample holding a NUL byte, else ``regular``),
  ``shouldIgnore: false`` and the ``oid`` of the file already there (sha256 for LFS, git sha1 otherwise), which
  huggingface-hub compares to skip unchanged files.
* ``POST /{repo_id}.git/info/lfs/objects/batch`` (JSON ``operation: upload``, ``objects: [{oid, size}]``): for each
  object not yet stored, ``actions.upload.href`` = ``PUT {cdn_url}/upload/{oid}`` and ``actions.verify.href`` =
  ``POST /{repo_id}.git/info/lfs/objects/verify``; an object already stored gets no ``actions``. The PUT checks the
  body's size and sha256 against the oid (``400`` otherwise) and stores it; verify answers ``404`` if it is not there.
* ``POST /api/models/{repo_id}/commit/{branch}`` (NDJSON: a ``header`` line with ``summary``, ``description`` and
  optionally ``parentCommit``, then ``file`` (base64), ``lfsFile`` (an uploaded oid), ``deletedFile`` /
  ``deletedFolder`` lines): ``200 {"commitOid", "commitUrl"}``; ``412`` if ``parentCommit`` is no longer the branch's
  head, ``404 RevisionNotFound`` for an unknown branch, ``400`` for an lfsFile whose object was never uploaded.
* Errors carry ``X-Error-Code`` so huggingface-hub raises its typed errors: ``EntryNotFound`` (404, with
  X-Repo-Commit), ``RevisionNotFound`` (404), ``RepoNotFound`` (401, like the Hub for unknown repos).

Faults: ``overrides[path] = bytes`` serves other bytes under a path in every repository, metadata included (a tampered
repo); ``in_transit[path] = bytes`` keeps the true metadata but sends other bytes in the body (corruption on the way).
``requests`` lists every (method, path) received, ``downloads()`` counts file bodies sent (CDN and resolve GETs, not
API answers) and ``sent`` lists them as (path, bytes), ``uploads`` lists the oids PUT.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote

COMMIT = "0123456789abcdef0123456789abcdef01234567"   # the one commit of a folder-backed repository
REVISIONS = ("main", COMMIT)                          # what a folder-backed repository answers to
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".model", ".tar", ".gz", ".zip", ".npz",
                ".npy", ".h5", ".jpg", ".jpeg", ".png", ".webp", ".gif")
GITATTRIBUTES = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES).encode()
POINTER_SIZE = 134


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Folder:
    """A folder's top-level files, read at request time (tests change them between calls)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def get(self, path: str) -> bytes | None:
        p = self.root / path
        return p.read_bytes() if path and "/" not in path and p.is_file() else None

    def paths(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_file()) if self.root.is_dir() else []

    def snapshot(self) -> dict[str, bytes]:
        return {p: self.get(p) for p in self.paths()}


@dataclass
class _Commit:
    oid: str
    parent: str | None
    files: dict[str, bytes] | _Folder
    lfs: dict[str, bool] = field(default_factory=dict)   # path -> stored in LFS (folder commits: the server's flag)
    summary: str = ""
    date: str = ""


@dataclass
class _Repo:
    commits: dict[str, _Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    private: bool = False

    def resolve(self, revision: str) -> _Commit | None:
        oid = self.branches.get(revision) or self.tags.get(revision) or revision
        return self.commits.get(oid)


class HubServer:
    """Two loopback HTTP servers (Hub and CDN) in daemon threads; use as a context manager."""

    def __init__(self, root: Path | None = None, repo_id: str = "brushstream/brushstream-weights", *,
                 lfs: bool = True):
        self.root, self.repo_id, self.lfs = (Path(root) if root is not None else None), repo_id, lfs
        self.overrides: dict[str, bytes] = {}
        self.in_transit: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.uploads: list[str] = []
        self.bodies_sent = 0
        self.sent: list[tuple[str, int]] = []   # (path, bytes) of every file body sent
        self.repos: dict[str, _Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}   # sha256 -> bytes: what was uploaded (the "bucket")
        self._counter = itertools.count(1)
        self._lock = threading.RLock()
        if self.root is not None:
            self.repos[repo_id] = _Repo(commits={COMMIT: _Commit(COMMIT, None, _Folder(self.root), summary="folder")},
                                        branches={"main": COMMIT})
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

            def _body_in(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline().strip():   # trailers, then the blank line
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self):
                body_in = self._body_in() if self.command in ("POST", "PUT") else b""
                with server._lock:
                    server.requests.append((self.command, self.path))
                status, headers, body, is_file = respond(self.command, self.path, self.headers, body_in)
                self.send_response(status)
                for k, v in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD" and body:
                    if is_file and self.command == "GET":
                        with server._lock:
                            server.bodies_sent += 1
                            server.sent.append((unquote(self.path.split("?")[0]), len(body)))
                    self.wfile.write(body)

            do_HEAD = do_GET = do_POST = do_PUT = do_DELETE = _handle

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return httpd

    @staticmethod
    def _error(status: int, code: str, **headers) -> tuple[int, dict, bytes, bool]:
        return status, {"X-Error-Code": code, "X-Error-Message": code, **headers}, b"", False

    @staticmethod
    def _json(value, status: int = 200) -> tuple[int, dict, bytes, bool]:
        return status, {"Content-Type": "application/json"}, json.dumps(value).encode(), False

    @staticmethod
    def _body(data: bytes, rng: str | None, headers: dict) -> tuple[int, dict, bytes, bool]:
        """200 with the bytes, or 206 for ``Range: bytes=N-`` / ``bytes=N-M`` (huggingface-hub resumes that way)."""
        headers = {**headers, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if not (rng and rng.startswith("bytes=")):
            return 200, headers, data, True
        first, _, last = rng[6:].partition("-")
        start, stop = int(first or 0), min(int(last) + 1 if last else len(data), len(data))
        return 206, {**headers, "Content-Range": f"bytes {start}-{stop - 1}/{len(data)}"}, data[start:stop], True

    # -- repository state ------------------------------------------------------------------------------

    def _files(self, commit: _Commit) -> dict[str, bytes]:
        files = commit.files.snapshot() if isinstance(commit.files, _Folder) else dict(commit.files)
        return {p: self.overrides.get(p, d) for p, d in files.items() if d is not None}

    def _data(self, commit: _Commit, path: str) -> bytes | None:
        if path in self.overrides:
            return self.overrides[path]
        return commit.files.get(path)

    def _is_lfs(self, commit: _Commit, path: str) -> bool:
        return self.lfs if isinstance(commit.files, _Folder) else commit.lfs.get(path, False)

    def _new_commit(self, repo: _Repo, branch: str, files: dict[str, bytes], lfs: dict[str, bool],
                    summary: str) -> str:
        """Record a commit on ``branch`` (which must exist or be new in an empty repository) and move the branch."""
        parent = repo.branches.get(branch)
        h = hashlib.sha1(f"parent {parent}\ncounter {next(self._counter)}\n{summary}\n".encode())
        for path in sorted(files):
            h.update(f"{path} {_sha256(files[path])}\n".encode())
        oid = h.hexdigest()
        date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        repo.commits[oid] = _Commit(oid, parent, files, lfs, summary, date)
        repo.branches[branch] = oid
        return oid

    # -- what tests use to set up and move repositories --------------------------------------------------

    def add_repo(self, repo_id: str, files: dict[str, bytes] | None = None, *, private: bool = False) -> str:
        """A new repository with an initial commit (``.gitattributes``), then ``files`` if given; the head commit."""
        with self._lock:
            repo = self.repos.setdefault(repo_id, _Repo(private=private))
            oid = self._new_commit(repo, "main", {".gitattributes": GITATTRIBUTES}, {}, "initial commit")
        return self.commit(repo_id, files) if files else oid

    def commit(self, repo_id: str, files: dict[str, bytes], *, branch: str = "main", message: str = "update",
               delete: tuple[str, ...] = ()) -> str:
        """Commit ``files`` (path -> bytes; weight-like suffixes in LFS) on top of ``branch``, as another publisher
        would; returns the new commit id."""
        with self._lock:
            repo = self.repos[repo_id]
            head = repo.resolve(branch)
            current = self._files(head) if head else {}
            lfs = dict(head.lfs) if head and not isinstance(head.files, _Folder) else {}
            for path in delete:
                current.pop(path, None)
            for path, data in files.items():
                current[path] = data
                lfs[path] = path.lower().endswith(LFS_SUFFIXES)
                if lfs[path]:
                    self.lfs_objects[_sha256(data)] = data
            return self._new_commit(repo, branch, current, lfs, message)

    def head(self, repo_id: str, branch: str = "main") -> str:
        return self.repos[repo_id].branches[branch]

    def file_at(self, repo_id: str, revision: str, path: str) -> bytes | None:
        commit = self.repos[repo_id].resolve(revision)
        return self._data(commit, path) if commit else None

    # -- the Hub origin ----------------------------------------------------------------------------------

    def _hub_response(self, method: str, raw: str, headers, body: bytes) -> tuple[int, dict, bytes, bool]:
        path, _, query = raw.partition("?")
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        with self._lock:
            if path.startswith("/api/"):
                return self._api(method, path[len("/api/"):], params, body)
            if path.endswith(".git/info/lfs/objects/batch") and method == "POST":
                return self._lfs_batch(unquote(path[1:-len(".git/info/lfs/objects/batch")]), body)
            if path.endswith(".git/info/lfs/objects/verify") and method == "POST":
                oid = json.loads(body or b"{}").get("oid", "")
                return self._json({"ok": True}) if oid in self.lfs_objects else self._error(404, "NotFound")
            repo_part, sep, rest = path.lstrip("/").partition("/resolve/")
            if sep and method in ("GET", "HEAD"):
                revision, _, filename = rest.partition("/")
                return self._resolve(unquote(repo_part), unquote(revision), unquote(filename), headers.get("Range"))
        return self._error(404, "NotFound")

    def _resolve(self, repo_id: str, revision: str, filename: str, rng: str | None):
        repo = self.repos.get(repo_id)
        if repo is None:
            return self._error(401, "RepoNotFound")
        commit = repo.resolve(revision)
        if commit is None:
            return self._error(404, "RevisionNotFound")
        data = self._data(commit, filename)
        if data is None:
            return self._error(404, "EntryNotFound", **{"X-Repo-Commit": commit.oid})
        if not self._is_lfs(commit, filename):
            return self._body(self.in_transit.get(filename, data), rng,
                              {"X-Repo-Commit": commit.oid, "ETag": f'"{_git_blob_sha1(data)}"'})
        sha256 = _sha256(data)
        return 302, {"Location": f"{self.cdn_url}/lfs/{sha256}/{quote(filename)}", "X-Repo-Commit": commit.oid,
                     "X-Linked-Etag": f'"{sha256}"', "X-Linked-Size": str(len(data)),
                     "ETag": f'"{_git_blob_sha1(data)}"'}, b"", False

    def _api(self, method: str, path: str, params: dict, body: bytes):
        if path == "repos/create" and method == "POST":
            return self._create_repo(json.loads(body or b"{}"))
        if path == "validate-yaml" and method == "POST":
            return self._json({"errors": [], "warnings": []})
        parts = path.split("/")
        if parts[0] != "models" or len(parts) < 3:
            return self._error(404, "NotFound")
        repo_id, rest = f"{unquote(parts[1])}/{unquote(parts[2])}", parts[3:]
        repo = self.repos.get(repo_id)
        if repo is None:
            return self._error(401, "RepoNotFound")
        action = rest[0] if rest else ""
        revision = unquote(rest[1]) if len(rest) > 1 else "main"
        if method == "GET" and action in ("", "revision"):
            return self._info(repo_id, repo, revision, params.get("blobs", "").lower() == "true")
        if method == "GET" and action == "tree":
            return self._tree(repo, revision, unquote("/".join(rest[2:])),
                              params.get("recursive", "").lower() == "true")
        if method == "GET" and action == "refs":
            return self._json({"branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": c}
                                            for b, c in repo.branches.items()],
                               "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": c}
                                        for t, c in repo.tags.items()], "converts": []})
        if method == "POST" and action == "branch" and len(rest) > 1:
            return self._create_branch(repo, revision, json.loads(body or b"{}"))
        if method == "POST" and action == "preupload":
            return self._preupload(repo, revision, json.loads(body or b"{}"))
        if method == "POST" and action == "commit":
            return self._commit(repo_id, repo, revision, body)
        return self._error(404, "NotFound")

    def _create_repo(self, payload: dict):
        repo_id = f"{payload.get('organization')}/{payload.get('name')}"
        if payload.get("type") not in (None, "model") or not payload.get("organization"):
            return self._json({"error": "only OWNER/NAME model repositories here"}, 400)
        if repo_id in self.repos:
            return self._json({"error": "You already created this model repo", "url": f"{self.url}/{repo_id}"}, 409)
        self.add_repo(repo_id, private=payload.get("visibility") == "private")
        return self._json({"url": f"{self.url}/{repo_id}", "name": repo_id, "id": repo_id})

    def _create_branch(self, repo: _Repo, branch: str, payload: dict):
        if branch in repo.branches:
            return self._json({"error": f"Reference refs/heads/{branch} already exists"}, 409)
        start = repo.resolve(payload.get("startingPoint") or "main")
        if start is None:
            return self._error(404, "RevisionNotFound")
        repo.branches[branch] = start.oid
        return self._json({})

    def _info(self, repo_id: str, repo: _Repo, revision: str, blobs: bool):
        commit = repo.resolve(revision)
        if commit is None:
            return self._error(404, "RevisionNotFound")
        siblings = []
        for p, data in sorted(self._files(commit).items()):
            sib = {"rfilename": p}
            if blobs:
                sib.update(size=len(data), blobId=_git_blob_sha1(data))
                if self._is_lfs(commit, p):
                    sib["lfs"] = {"sha256": _sha256(data), "size": len(data), "pointerSize": POINTER_SIZE}
            siblings.append(sib)
        return self._json({"_id": repo_id, "id": repo_id, "modelId": repo_id, "sha": commit.oid,
                           "private": repo.private, "lastModified": commit.date or None, "tags": [],
                           "siblings": siblings})

    def _tree(self, repo: _Repo, revision: str, prefix: str, recursive: bool):
        commit = repo.resolve(revision)
        if commit is None:
            return self._error(404, "RevisionNotFound")
        files = self._files(commit)
        base = prefix.strip("/") + "/" if prefix.strip("/") else ""
        under = {p: d for p, d in files.items() if p.startswith(base)}
        if base and not under:
            return self._error(404, "EntryNotFound", **{"X-Repo-Commit": commit.oid})
        entries, folders = [], set()
        for p, data in sorted(under.items()):
            rel = p[len(base):].split("/")
            for depth in range(1, len(rel)):
                folders.add(base + "/".join(rel[:depth]))
            if len(rel) > 1 and not recursive:
                continue
            entry = {"type": "file", "oid": _git_blob_sha1(data), "size": len(data), "path": p}
            if self._is_lfs(commit, p):
                entry["lfs"] = {"oid": _sha256(data), "size": len(data), "pointerSize": POINTER_SIZE}
            entries.append(entry)
        for folder in sorted(folders):
            if recursive or "/" not in folder[len(base):]:
                entries.append({"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(),
                                "path": folder})
        return self._json(entries)

    def _preupload(self, repo: _Repo, revision: str, payload: dict):
        commit = repo.resolve(revision)
        if commit is None:
            return self._error(404, "RevisionNotFound")
        answers = []
        for f in payload.get("files", []):
            sample = base64.b64decode(f.get("sample", ""))
            lfs = f["path"].lower().endswith(LFS_SUFFIXES) or b"\0" in sample
            there = self._data(commit, f["path"])
            oid = None if there is None else (_sha256(there) if lfs else _git_blob_sha1(there))
            answers.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                            "oid": oid})
        return self._json({"files": answers, "commitOid": commit.oid})

    def _lfs_batch(self, repo_id: str, body: bytes):
        if repo_id not in self.repos:
            return self._error(401, "RepoNotFound")
        payload = json.loads(body or b"{}")
        if payload.get("operation") != "upload":
            return self._json({"message": "only uploads here"}, 400)
        objects = []
        for obj in payload.get("objects", []):
            answer = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.lfs_objects:
                answer["actions"] = {
                    "upload": {"href": f"{self.cdn_url}/upload/{obj['oid']}?size={obj['size']}", "header": {}},
                    "verify": {"href": f"{self.url}/{quote(repo_id)}.git/info/lfs/objects/verify", "header": {}}}
            objects.append(answer)
        return 200, {"Content-Type": "application/vnd.git-lfs+json"}, json.dumps(
            {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode(), False

    def _commit(self, repo_id: str, repo: _Repo, branch: str, body: bytes):
        if branch not in repo.branches:
            return self._error(404, "RevisionNotFound")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            return self._json({"error": "the first line must be the header"}, 400)
        header = lines[0]["value"]
        head = repo.resolve(branch)
        if header.get("parentCommit") and header["parentCommit"] != head.oid:
            return self._json({"error": "A commit has happened since. Please refresh and try again."}, 412)
        files = self._files(head)
        lfs = {p: self._is_lfs(head, p) for p in files}
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            path = value.get("path", "")
            if key == "file":
                files[path], lfs[path] = base64.b64decode(value["content"]), False
            elif key == "lfsFile":
                if value.get("oid") not in self.lfs_objects:
                    return self._json({"error": f"{path}: LFS object {value.get('oid')} was never uploaded"}, 400)
                files[path], lfs[path] = self.lfs_objects[value["oid"]], True
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    return self._error(404, "EntryNotFound")
            elif key == "deletedFolder":
                for p in [p for p in files if p.startswith(path.rstrip("/") + "/")]:
                    del files[p]
            else:
                return self._json({"error": f"unknown commit line {key!r}"}, 400)
        oid = self._new_commit(repo, branch, files, lfs, header.get("summary", ""))
        return self._json({"success": True, "commitOid": oid, "commitUrl": f"{self.url}/{repo_id}/commit/{oid}",
                           "pullRequestUrl": None})

    # -- the CDN origin -------------------------------------------------------------------------------------

    def _cdn_response(self, method: str, raw: str, headers, body: bytes) -> tuple[int, dict, bytes, bool]:
        path, _, query = raw.partition("?")
        if method == "PUT" and path.startswith("/upload/"):
            oid = path[len("/upload/"):]
            size = parse_qs(query).get("size", [str(len(body))])[-1]
            if _sha256(body) != oid or str(len(body)) != size:
                return 400, {}, b"the body is not the object announced", False
            with self._lock:
                self.lfs_objects[oid] = body
                self.uploads.append(oid)
            return 200, {"ETag": f'"{oid}"'}, b"", False
        _, lfs, sha256, filename = (path.split("/", 3) + ["", "", ""])[:4]
        filename = unquote(filename)
        with self._lock:
            data = self.overrides.get(filename)
            if data is None or _sha256(data) != sha256:
                data = self.lfs_objects.get(sha256)
            if data is None and self.root is not None:
                data = _Folder(self.root).get(filename)
        if method not in ("GET", "HEAD") or lfs != "lfs" or data is None or _sha256(data) != sha256:
            return 404, {}, b"", False  # a CDN knows nothing of Hub error codes
        return self._body(self.in_transit.get(filename, data), headers.get("Range"), {"ETag": f'"{sha256}"'})

    # -- what tests use ------------------------------------------------------------------------------------

    def downloads(self) -> int:
        """File bodies sent (from the CDN in LFS mode, from resolve URLs for regular files)."""
        return self.bodies_sent

    def stop(self) -> None:
        for httpd in (self._hub, self._cdn):
            httpd.shutdown()
            httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
