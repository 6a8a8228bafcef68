"""flaghook: Flagsmith-compatible webhooks from Python, over libflaghook.

Pure Python over ctypes: renders webhook bodies byte for byte as the
Flagsmith server does, signs and verifies X-Flagsmith-Signature and
Standard Webhooks signatures, and delivers through a libflaghook client.

    import flaghook
    body = flaghook.render({"event_type": "FLAG_UPDATED", "data": {...}})
    signature = flaghook.sign(b"secret", body)

The library is found through flaghook.load(path), else $FLAGHOOK_LIBRARY,
else the system's loader (libflaghook.so.0).
"""

from ._client import Client
from ._errors import (ClosedError, DeliveryError, EventError, FlaghookError, InvalidArgumentError,
                      LibraryError, NotFoundError, QueueFullError, RefusedError, SecretError,
                      StateError, TimeoutError, URLError)
from ._lib import Library, library, load
from ._version import __version__

__all__ = [
    "Client", "Library", "load", "library", "version", "constant", "constants",
    "render", "sign", "verify", "standard_sign", "standard_verify", "url_check",
    "FlaghookError", "LibraryError", "InvalidArgumentError", "EventError", "URLError",
    "RefusedError", "SecretError", "NotFoundError", "QueueFullError", "StateError",
    "ClosedError", "TimeoutError", "DeliveryError", "__version__",
]


def version(lib=None):
    """The loaded library's version ("0.1.0")."""
    return library(lib).version


def constant(name, lib=None):
    """A public constant of the library by name ("FLAGHOOK_EINVAL")."""
    return library(lib).constant(name)


def constants(lib=None):
    """Every public constant of the library, {"FLAGHOOK_EINVAL": -1, ...}."""
    return dict(library(lib).constants)


def render(event, *, profile=None, compact=False, max_body_bytes=0, library=None):
    """The webhook body for an event, as bytes (flaghook_render_json).

    event: {"event_type": "FLAG_UPDATED", "data": {...}} (the payload's
    own shape, plus "environment_id"/"organisation_id" routing ids where
    needed), as a dict or as JSON text (str or bytes); aware datetimes are
    accepted for times.  profile: "flagsmith" (default), "flagsmith_2020"
    or "bullet_train"; compact: no spaces.  Raises EventError naming the
    JSON path of what is wrong.
    """
    return _lib_of(library).render(event, profile, compact, max_body_bytes)


def sign(secret, body, *, library=None):
    """X-Flagsmith-Signature of body: lowercase hex HMAC-SHA256 with the
    secret (bytes; str is taken as UTF-8).  SecretError for an empty one."""
    return _lib_of(library).sign(secret, body)


def verify(secret, body, signature, *, library=None):
    """True when signature (hex, any case) is body's X-Flagsmith-Signature;
    compared in constant time.  SecretError for an empty secret."""
    return _lib_of(library).verify(secret, body, signature)


def standard_sign(secret, msg_id, timestamp, body, *, library=None):
    """A Standard Webhooks signature, "v1,<base64>", over
    "msg_id.timestamp.body" with a "whsec_..." secret."""
    return _lib_of(library).standard_sign(secret, msg_id, timestamp, body)


def standard_verify(secrets, msg_id, timestamp, signature_header, body, now=None, tolerance=300,
                    *, library=None):
    """True when a webhook-signature header matches any of `secrets` (one
    "whsec_..." secret or several) and the timestamp (the webhook-timestamp
    header, str or int) is within `tolerance` seconds of `now` (Unix
    seconds; None: the clock).  SecretError for a secret that is not a key."""
    return _lib_of(library).standard_verify(secrets, msg_id, timestamp, signature_header, body,
                                            now, tolerance)


def url_check(url, *, library=None):
    """What the default SSRF guard says of a URL (no private address
    allowed), sending nothing; Client.url_check uses a client's settings.
    None when it may be sent to; otherwise raises."""
    _lib_of(library).check_url(None, url)


_lib_of = library
