"""The one exception type users see: its message is a single line naming the file and the problem."""


class BrushstreamError(Exception):
    """A user-facing failure (bad input, missing or tampered weights, impossible request).

    The CLI prints ``str(error)`` as one line on stderr and exits with code 2; nothing else
    in the product catches it, so half-written outputs never happen.
    """

    def __init__(self, message: str):
        # Keep it to one line whatever the caller passed in.
        super().__init__(" ".join(str(message).split()))


def reason(exc: BaseException) -> str:
    """The short cause inside an OS or FFmpeg error, for the one-line messages."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
