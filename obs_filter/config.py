"""Where the filter finds the obs-websocket connection: host and port from the command line or a config file, the
password from ``OBS_WEBSOCKET_PASSWORD`` or the config file, never the command line (it would show in ``ps``
and shell history).

Config file (TOML; ``--obs-config FILE``, default ``~/.config/brushstream/obs.toml``)::

    [obs]
    host = "127.0.0.1"
    port = 4455
    password = "..."
"""
from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import BrushstreamError

PASSWORD_VARIABLE = "OBS_WEBSOCKET_PASSWORD"
DEFAULT_CONFIG = Path("~/.config/brushstream/obs.toml")


def read_config(path: str | os.PathLike | None) -> dict:
    """The ``[obs]`` table of the config file; {} when no file was named and the default one is absent."""
    try:
        import tomllib
    except ImportError:   # Python 3.10
        import tomli as tomllib

    file = Path(path).expanduser() if path else DEFAULT_CONFIG.expanduser()
    if not file.exists():
        if path:
            raise BrushstreamError(f"{file}: no such config file")
        return {}
    try:
        table = tomllib.loads(file.read_text()).get("obs", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BrushstreamError(f"{file}: unreadable config ({exc})") from None
    if not isinstance(table, dict):
        raise BrushstreamError(f"{file}: [obs] must be a table")
    unknown = set(table) - {"host", "port", "password"}
    if unknown:
        raise BrushstreamError(f"{file}: unknown keys in [obs]: {', '.join(sorted(unknown))}")
    return table


def connection(host: str | None, port: int | None, config_path: str | None) -> tuple[str, int, str]:
    """(host, port, password): the command line wins for host and port, the environment for the password."""
    table = read_config(config_path)
    password = os.environ.get(PASSWORD_VARIABLE)
    if password is None:
        password = str(table.get("password", ""))
    port = port if port is not None else table.get("port", 4455)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise BrushstreamError(f"obs-websocket port must be 1..65535, not {port!r}")
    return host or str(table.get("host", "127.0.0.1")), port, password
