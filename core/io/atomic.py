"""Atomic file writes: write a temp file beside the target, then rename, so no reader sees half a file."""
from __future__ import annotations

import contextlib
import os
import secrets
import signal
import threading
from pathlib import Path
from typing import Iterator


def _create_temp(path: Path) -> Path:
    """Create an empty hidden file beside ``path``; its suffix still selects the writer's format."""
    for _ in range(100):
        tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}{path.suffix}")
        try:
            # Mode 0o666 lets the kernel apply the umask, as for any ordinary file; reading the
            # umask with os.umask() would briefly change it for every thread in the process.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"{path}: could not pick a free temporary name")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temp path with the target's suffix; on success it replaces ``path``.

    On any exception, SystemExit and KeyboardInterrupt included, the temp file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        tmp = _create_temp(path)
        yield str(tmp)
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # 143, the status a shell reports for SIGTERM


def exit_cleanly_on_sigterm() -> None:
    """Make SIGTERM raise SystemExit(143) so ``finally`` blocks (and atomic_path's cleanup) run.

    Only from the main thread (the only one that may set handlers), and only where SIGTERM still
    has its default action: a host's own handler, or an inherited "ignore", is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, _exit_on_sigterm):
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
