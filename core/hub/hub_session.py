"""A bounded, quiet conversation with the Hugging Face Hub for core/hub/weights.py (its only caller).

huggingface-hub has no parameter for most of its waiting and retrying, so ``HubCall.active()`` sets its
module settings for the length of one call (under a lock, restored afterwards); see ``HubCall``.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import os
import threading

from ..errors import BrushstreamError

ENV_HUB_TIMEOUT = "BRUSHSTREAM_HUB_TIMEOUT"  # seconds; bounds each connect and each read
HUB_CONNECT_TIMEOUT = 10.0  # defaults when ENV_HUB_TIMEOUT is unset
HUB_READ_TIMEOUT = 30.0
HUB_RETRY_PAUSE = 1.0  # before the one retry

log = logging.getLogger("brushstream.core.hub.weights")


def hub_timeouts() -> tuple[float, float]:
    """(connect, read) seconds: ``$BRUSHSTREAM_HUB_TIMEOUT`` for both, read at call time, else the defaults."""
    raw = os.environ.get(ENV_HUB_TIMEOUT, "").strip()
    if not raw:
        return HUB_CONNECT_TIMEOUT, HUB_READ_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:  # also refuses nan
        raise BrushstreamError(
            f"{ENV_HUB_TIMEOUT}={raw!r} is not a number of seconds > 0 (it bounds each connect and read on the "
            f"Hub; unset, they are {HUB_CONNECT_TIMEOUT:g} s and {HUB_READ_TIMEOUT:g} s)")
    return seconds, seconds


def transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[int, ...]]:
    """What huggingface-hub itself treats as transient (network errors, timeouts; 408/429/5xx)."""
    from huggingface_hub.utils import _http

    return (tuple(getattr(_http, "_DEFAULT_RETRY_ON_EXCEPTIONS", ())),
            tuple(getattr(_http, "_DEFAULT_RETRY_ON_STATUS_CODES", (408, 429, 500, 502, 503, 504))))


def is_transient(exc: BaseException | None) -> bool:
    exceptions, statuses = transport_errors()
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return exc is not None and (isinstance(exc, exceptions) or status in statuses)


class _QuietHub(logging.Filter):
    """Keeps one thread's huggingface-hub / HTTP-library records (retry and warning lines) off the console;
    they go to this module's debug log instead. Other threads' records pass untouched."""

    PREFIXES = ("huggingface_hub", "httpx", "httpcore", "urllib3", "hf_xet")

    def __init__(self, thread: int):
        super().__init__()
        self.thread = thread

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread != self.thread:
            return True
        log.debug("%s: %s", record.name, record.getMessage())
        return False

    @contextlib.contextmanager
    def installed(self):
        # A logger's filters only see records made on that very logger, so every one of theirs gets it.
        loggers = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict) if n.startswith(self.PREFIXES)]
        for lg in loggers:
            lg.addFilter(self)
        try:
            yield
        finally:
            for lg in loggers:
                lg.removeFilter(self)


class HubCall:
    """One bounded conversation with the Hub: timeouts on every connect and read, one retry in total, quiet.

    Why: huggingface-hub 2.x's hf_hub_download makes one HEAD without retries (10 s timeout); if that fails
    with a network error and nothing is cached it tries again with a 60 s timeout (file_download's
    ``_ETAG_RETRY_TIMEOUT``) through ``http_backoff`` (5 retries, sleeping 1+2+4+8+8 s, two warning lines
    each). So a refused connection cost ~25 s and a dozen stderr lines; a silent endpoint 10 + 6x60 + 23 s.
    Its download GET (``http_get``) then resumes up to 5 times (10 s timeout each). None of this has a
    parameter except the first HEAD's ``etag_timeout``, so for the length of the call (under a lock, restored
    afterwards) this sets huggingface-hub's module settings:

    * ``constants.HF_HUB_ETAG_TIMEOUT`` / ``HF_HUB_DOWNLOAD_TIMEOUT`` and ``file_download._ETAG_RETRY_TIMEOUT``:
      a (connect, read) timeout object for the HTTP library huggingface-hub uses;
    * ``file_download._DEFAULT_RETRY_ON_EXCEPTIONS`` / ``_STATUS_CODES``: empty, which skips hf_hub_download's
      own HEAD retry (those names are only used for that decision); weights._hub_file makes the one retry itself;
    * ``file_download.http_get``: a wrapper that, on this thread, caps its resume retries to what is left of
      the one retry (it retries by calling itself through that module name);
    * ``constants.HF_HUB_DISABLE_XET``: True, so the file comes over plain HTTPS, where the above apply (the
      hf_xet client has its own retries and timeouts in Rust, settable only process-wide);
    * ``constants.HF_HUB_DISABLE_TELEMETRY``: True (what $HF_HUB_DISABLE_TELEMETRY does): otherwise building the
      User-Agent fetches an "agent harness" list from the import-time endpoint once per process, with a 3 s
      timeout of its own, even for a cache-only lookup (utils/_detect_agent.py).

    Cache-only lookups run under the same settings (no request at all, and no log noise).

    Other threads using huggingface-hub during the call see these settings too; brushstream's own calls are
    serialised by the lock. Anything a given huggingface-hub version lacks is left alone.
    """

    _lock = threading.RLock()

    def __init__(self, connect: float, read: float):
        self.connect, self.read = connect, read
        self.retries_left = 1
        self.thread = threading.get_ident()

    @property
    def retried(self) -> bool:
        return self.retries_left < 1

    def timeout(self):
        from huggingface_hub.utils import _http

        for lib in ("httpx2", "httpx"):  # huggingface-hub 2.x / 1.x
            mod = getattr(_http, lib, None)
            if mod is not None and hasattr(mod, "Timeout"):
                return mod.Timeout(self.read, connect=self.connect)
        return (self.connect, self.read)  # requests-based huggingface-hub (< 1.0)

    def _http_get(self, original):
        @functools.wraps(original)
        def http_get(*args, **kwargs):
            if threading.get_ident() == self.thread:
                if self.http_get_calls:  # http_get retries by calling itself: this call is a retry
                    self.retries_left -= 1
                self.http_get_calls += 1
                kwargs["_nb_retries"] = max(0, min(kwargs.get("_nb_retries", 5), self.retries_left))
            return original(*args, **kwargs)
        return http_get

    @contextlib.contextmanager
    def active(self):
        from huggingface_hub import constants
        from huggingface_hub import file_download as fd

        timeout = self.timeout()
        self.http_get_calls = 0
        settings = [(constants, "HF_HUB_ETAG_TIMEOUT", timeout), (constants, "HF_HUB_DOWNLOAD_TIMEOUT", timeout),
                    (constants, "HF_HUB_DISABLE_XET", True), (constants, "HF_HUB_DISABLE_TELEMETRY", True),
                    (fd, "_ETAG_RETRY_TIMEOUT", timeout),
                    (fd, "_DEFAULT_RETRY_ON_EXCEPTIONS", ()), (fd, "_DEFAULT_RETRY_ON_STATUS_CODES", ())]
        if "_nb_retries" in inspect.signature(getattr(fd, "http_get", lambda: None)).parameters:
            settings.append((fd, "http_get", self._http_get(fd.http_get)))
        with self._lock, _QuietHub(self.thread).installed():
            saved = [(mod, name, getattr(mod, name)) for mod, name, _ in settings if hasattr(mod, name)]
            try:
                for mod, name, value in settings:
                    if hasattr(mod, name):
                        setattr(mod, name, value)
                yield timeout
            finally:
                for mod, name, value in reversed(saved):
                    setattr(mod, name, value)

    def why(self, exc: BaseException | None) -> str:
        """A few words on a transport failure, for the final error line."""
        name = type(exc).__name__
        if "Timeout" in name:
            what = (f"no connection within {self.connect:g} s" if "Connect" in name else
                    f"no answer within {self.read:g} s")
            text = f"timed out: {what}; {ENV_HUB_TIMEOUT} sets the wait"
        elif getattr(getattr(exc, "response", None), "status_code", None):
            text = f"HTTP {exc.response.status_code}"
        elif exc is None:
            text = "no details"
        else:
            text = f"{name}: {' '.join(str(exc).split())[:120]}"
        return text + ("; retried once" if self.retried else "")
