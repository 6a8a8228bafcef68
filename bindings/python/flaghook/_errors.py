"""Exceptions.

Every failure the library reports becomes a FlaghookError carrying the
library's negative code (`code`), its name (`name`, "FLAGHOOK_EINVAL") and
the library's detail (`message`).  The subclasses below are picked by the
code's *name*, which the library gives at load time, so no value is copied
here.  Messages come from the library, which never puts a secret or a URL's
credentials in them, or from this package, which never quotes an argument.
"""

import builtins


class LibraryError(OSError):
    """libflaghook could not be found or loaded, or is too old."""


class FlaghookError(Exception):
    """A libflaghook call failed: `code` (negative int), `name`, `message`."""

    def __init__(self, code, message="", name=None):
        super().__init__(code, message, name)
        self.code = code
        self.message = message
        self.name = name or "FLAGHOOK_E{}".format(code)

    def __str__(self):
        if self.message:
            return "{}: {}".format(self.name, self.message)
        return self.name

    def __repr__(self):
        return "{}({!r}, {!r}, {!r})".format(type(self).__name__, self.code, self.message, self.name)


class InvalidArgumentError(FlaghookError, ValueError):
    """FLAGHOOK_EINVAL: an argument (or a JSON member of the options) is wrong."""


class EventError(FlaghookError, ValueError):
    """FLAGHOOK_EEVENT, FLAGHOOK_EUTF8, FLAGHOOK_ETOOBIG: the event cannot be
    rendered; the message names the JSON path ("$.data.new_state...")."""


class URLError(FlaghookError, ValueError):
    """FLAGHOOK_EURL: not an acceptable http(s) URL (the URL is not quoted)."""


class RefusedError(FlaghookError):
    """FLAGHOOK_EREFUSED: the SSRF guard refuses the address (loopback,
    private, ...); see the client options allow_private and allow_cidrs."""


class SecretError(FlaghookError, ValueError):
    """FLAGHOOK_ESECRET: the secret is not acceptable (it is never quoted)."""


class NotFoundError(FlaghookError, LookupError):
    """FLAGHOOK_ENOTFOUND: no such endpoint (or constant)."""


class QueueFullError(FlaghookError):
    """FLAGHOOK_EFULL: the client's delivery queue is full (max_pending)."""


class StateError(FlaghookError):
    """FLAGHOOK_ESTATE: the client is shutting down or closed."""


class ClosedError(StateError):
    """The Client was closed (by close(), or while this call waited)."""


class TimeoutError(FlaghookError, builtins.TimeoutError):  # noqa: A001 - flaghook.TimeoutError
    """FLAGHOOK_ETIMEOUT: a wait ran out of time."""


class DeliveryError(FlaghookError):
    """FLAGHOOK_EDELIVERY from a SYNC emit: at least one endpoint did not take
    the event.  `results` holds the event's result records (one per
    endpoint, failed or not); `message` is the first failure's cause."""

    def __init__(self, code, message="", name=None, results=None):
        super().__init__(code, message, name)
        self.results = list(results or [])

    @property
    def failed(self):
        """The results whose outcome is not "delivered"."""
        return [r for r in self.results if r.get("outcome") != "delivered"]


# Code name -> class.  Codes not named here are plain FlaghookErrors.
_BY_NAME = {
    "FLAGHOOK_EINVAL": InvalidArgumentError,
    "FLAGHOOK_EEVENT": EventError,
    "FLAGHOOK_EUTF8": EventError,
    "FLAGHOOK_ETOOBIG": EventError,
    "FLAGHOOK_EURL": URLError,
    "FLAGHOOK_EREFUSED": RefusedError,
    "FLAGHOOK_ESECRET": SecretError,
    "FLAGHOOK_ENOTFOUND": NotFoundError,
    "FLAGHOOK_EFULL": QueueFullError,
    "FLAGHOOK_ESTATE": StateError,
    "FLAGHOOK_ETIMEOUT": TimeoutError,
    "FLAGHOOK_EDELIVERY": DeliveryError,
}


def error_class(name):
    return _BY_NAME.get(name, FlaghookError)
