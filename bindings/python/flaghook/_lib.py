"""Finding libflaghook, declaring what this package calls, and the calls
that need no client (render, sign, verify, constants).

Only the layout-free API is used ("For bindings" in flaghook.h): no struct
layout or macro value is copied here.  ctypes releases the GIL around every
call, so blocking calls let other Python threads run.
"""

import ctypes
import ctypes.util
import json
import os
import re
import threading
import time

from . import _errors
from ._json import as_secret, as_text, dumps, event_bytes
from ._version import LIBRARY_ABI_MAJOR, MIN_LIBRARY_VERSION

c_char_pp = ctypes.POINTER(ctypes.POINTER(ctypes.c_char))
c_size_p = ctypes.POINTER(ctypes.c_size_t)
c_client = ctypes.c_void_p
ERROR_SIZE = 1024

# name: (restype, argtypes).  Inputs are c_char_p; strings the library
# allocates come back through POINTER(c_char), so ctypes never takes them
# over, and are released with flaghook_free.
_PROTOTYPES = {
    "flaghook_version": (ctypes.c_char_p, []),
    "flaghook_version_number": (ctypes.c_uint32, []),
    "flaghook_strerror": (ctypes.c_char_p, [ctypes.c_int]),
    "flaghook_free": (None, [ctypes.c_void_p]),
    "flaghook_constant": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int64)]),
    "flaghook_constants_json": (ctypes.c_char_p, []),
    "flaghook_render_json": (ctypes.c_int, [c_char_pp, c_size_p, ctypes.c_char_p, ctypes.c_size_t,
                                            ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]),
    "flaghook_sign": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                     ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]),
    "flaghook_verify": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                       ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]),
    "flaghook_standard_signature_bytes": (ctypes.c_size_t, []),
    "flaghook_standard_sign": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                              ctypes.c_char_p, ctypes.c_int64, ctypes.c_char_p,
                                              ctypes.c_size_t]),
    "flaghook_standard_verify": (ctypes.c_int, [ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t,
                                                ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                                ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int64,
                                                ctypes.c_int64]),
    "flaghook_last_error": (ctypes.c_char_p, []),
    "flaghook_url_check": (ctypes.c_int, [c_client, ctypes.c_char_p]),
    "flaghook_client_new_json": (ctypes.c_int, [ctypes.POINTER(c_client), ctypes.c_char_p,
                                                ctypes.c_char_p, ctypes.c_size_t]),
    "flaghook_client_free": (None, [c_client]),
    "flaghook_client_last_error": (ctypes.c_size_t, [c_client, ctypes.c_char_p, ctypes.c_size_t]),
    "flaghook_endpoint_add_json": (ctypes.c_int, [c_client, ctypes.POINTER(ctypes.c_uint64),
                                                  ctypes.c_char_p, ctypes.c_char_p,
                                                  ctypes.c_size_t]),
    "flaghook_endpoint_remove": (ctypes.c_int, [c_client, ctypes.c_uint64]),
    "flaghook_endpoint_set_enabled": (ctypes.c_int, [c_client, ctypes.c_uint64, ctypes.c_int]),
    "flaghook_emit_json": (ctypes.c_int, [c_client, ctypes.c_char_p, ctypes.c_size_t,
                                          ctypes.c_char_p, ctypes.c_size_t]),
    "flaghook_flush": (ctypes.c_int, [c_client, ctypes.c_int64]),
    "flaghook_results_fd": (ctypes.c_int, [c_client, ctypes.POINTER(ctypes.c_int)]),
    "flaghook_result_next": (ctypes.c_int, [c_client, ctypes.c_int64, c_char_pp, c_size_p]),
    "flaghook_stats_json": (ctypes.c_int, [c_client, c_char_pp, c_size_p]),
    "flaghook_metrics": (ctypes.c_int, [c_client, c_char_pp, c_size_p]),
}

_ERROR_NAME = re.compile(r"^FLAGHOOK_E[A-Z0-9]+$")
_PROFILES = ("flagsmith", "flagsmith_2020", "bullet_train")


def _version_text(number):
    return "{}.{}.{}".format(number >> 16, (number >> 8) & 0xFF, number & 0xFF)


class Library:
    """One loaded libflaghook: its functions, constants and error codes.

    Made by flaghook.load(); most programs use the module functions, which
    use the library loaded first.
    """

    def __init__(self, path):
        self.path = path
        try:
            self._dll = ctypes.CDLL(path)
        except OSError as e:
            raise _errors.LibraryError("libflaghook could not be loaded from {}: {}".format(path, e)) from None
        dll = self._dll
        if not hasattr(dll, "flaghook_version_number"):
            raise _errors.LibraryError("{} is not libflaghook (no flaghook_version_number)".format(path))
        dll.flaghook_version_number.restype = ctypes.c_uint32
        dll.flaghook_version_number.argtypes = []
        self.version_number = int(dll.flaghook_version_number())
        self.version = _version_text(self.version_number)
        if (self.version_number >> 16) != LIBRARY_ABI_MAJOR:
            raise _errors.LibraryError(
                "libflaghook {} at {} has ABI {}; this package is written for libflaghook.so.{}".format(
                    self.version, path, self.version_number >> 16, LIBRARY_ABI_MAJOR))
        if self.version_number < MIN_LIBRARY_VERSION:
            raise _errors.LibraryError(
                "libflaghook {} at {} is too old: the flaghook package needs {} or later".format(
                    self.version, path, _version_text(MIN_LIBRARY_VERSION)))
        missing = [name for name in _PROTOTYPES if not hasattr(dll, name)]
        if missing:
            raise _errors.LibraryError(
                "libflaghook {} at {} lacks {} (the layout-free API for bindings): the flaghook "
                "package needs a library built with it".format(self.version, path, ", ".join(missing)))
        for name, (restype, argtypes) in _PROTOTYPES.items():
            fn = getattr(dll, name)
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, "c_" + name[len("flaghook_"):], fn)
        self.constants = json.loads(dll.flaghook_constants_json().decode("utf-8"))
        self.error_names = {value: name for name, value in self.constants.items()
                            if _ERROR_NAME.match(name) and isinstance(value, int) and value < 0}
        self._signature_bytes = int(self.c_standard_signature_bytes())

    def __repr__(self):
        return "<flaghook.Library {} at {}>".format(self.version, self.path)

    # ---- constants and errors ------------------------------------------

    def constant(self, name):
        """The value of a public constant by its name, from the library."""
        value = ctypes.c_int64()
        rc = self.c_constant(as_text(name, "name"), ctypes.byref(value))
        if rc:
            raise self.error(rc, "{} is not a constant of libflaghook {}".format(name, self.version))
        return value.value

    def code(self, name):
        """The (negative) value of an error code by its name."""
        return self.constants[name]

    def error(self, code, message=None, **extra):
        """The exception for a return code, with the library's detail."""
        name = self.error_names.get(code)
        if not message:
            message = self.c_strerror(code).decode("utf-8", "replace")
        cls = _errors.error_class(name)
        return cls(code, message, name, **extra)

    def error_from(self, code, buf):
        """The exception for a return code whose detail is in an error
        buffer that the failed call filled (whichever thread it ran on)."""
        return self.error(code, buf.value.decode("utf-8", "replace"))

    def thread_error(self, code):
        """For calls that take no error buffer and no client (sign and
        verify): the detail the call just left on this very thread."""
        return self.error(code, self.c_last_error().decode("utf-8", "replace"))

    def take_string(self, ptr, length):
        """Copies a string the library allocated and releases it."""
        try:
            return ctypes.string_at(ptr, length)
        finally:
            self.c_free(ptr)

    # ---- rendering and signatures ----------------------------------------

    def render(self, event, profile=None, compact=False, max_body_bytes=0):
        body = event_bytes(event)
        options = {}
        if profile is not None:
            if profile not in _PROFILES:
                raise ValueError("profile must be one of {}".format(", ".join(_PROFILES)))
            options["profile"] = profile
        if compact:
            options["compact"] = True
        if max_body_bytes:
            options["max_body_bytes"] = int(max_body_bytes)
        out = ctypes.POINTER(ctypes.c_char)()
        out_len = ctypes.c_size_t()
        err = ctypes.create_string_buffer(ERROR_SIZE)
        rc = self.c_render_json(ctypes.byref(out), ctypes.byref(out_len), body, len(body),
                              dumps(options) if options else None, err, ERROR_SIZE)
        if rc:
            raise self.error_from(rc, err)
        return self.take_string(out, out_len.value)

    def sign(self, secret, body):
        key = as_secret(secret)
        body = bytes(body)
        out = ctypes.create_string_buffer(65)
        rc = self.c_sign(out, len(out), key, len(key), body, len(body))
        if rc:
            raise self.thread_error(rc)
        return out.value.decode("ascii")

    def verify(self, secret, body, signature):
        key = as_secret(secret)
        body = bytes(body)
        sig = as_text(signature, "signature")
        rc = self.c_verify(key, len(key), body, len(body), sig, len(sig))
        if rc == 0:
            return True
        if rc == self.constants["FLAGHOOK_EVERIFY"]:
            return False
        raise self.thread_error(rc)

    def standard_sign(self, secret, msg_id, timestamp, body):
        key = as_text(secret, "secret")
        mid = as_text(msg_id, "msg_id")
        body = bytes(body)
        out = ctypes.create_string_buffer(self._signature_bytes)
        rc = self.c_standard_sign(out, len(out), key, mid, int(timestamp), body, len(body))
        if rc:
            raise self.thread_error(rc)
        return out.value.decode("ascii")

    def standard_verify(self, secrets, msg_id, timestamp, signature_header, body, now=None,
                        tolerance=300):
        if isinstance(secrets, (str, bytes, bytearray)):
            secrets = [secrets]
        keys = [as_text(s, "secret") for s in secrets]
        array = (ctypes.c_char_p * max(len(keys), 1))(*keys)
        if isinstance(timestamp, int):
            timestamp = str(timestamp)
        now_s = int(time.time()) if now is None else int(now)
        body = bytes(body)
        rc = self.c_standard_verify(
            array, len(keys), as_text(msg_id, "msg_id"), as_text(timestamp, "timestamp"),
            as_text(signature_header, "signature_header"), body, len(body), now_s, int(tolerance))
        if rc == 0:
            return True
        if rc == self.constants["FLAGHOOK_EVERIFY"]:
            return False
        raise self.thread_error(rc)

    def check_url(self, client, url):
        # flaghook_url_check runs on this thread and leaves its detail here.
        rc = self.c_url_check(client, as_text(url, "url"))
        if rc:
            raise self.thread_error(rc)

    def client_error(self, client):
        """The detail of the client's most recent failure (any thread)."""
        buf = ctypes.create_string_buffer(ERROR_SIZE)
        self.c_client_last_error(client, buf, ERROR_SIZE)
        return buf.value.decode("utf-8", "replace")


# ---- which library -------------------------------------------------------

_lock = threading.Lock()
_default = None


def _candidates(path):
    if path is not None:
        return [os.fspath(path)]
    env = os.environ.get("FLAGHOOK_LIBRARY")
    if env:
        return [env]
    names = ["libflaghook.so.{}".format(LIBRARY_ABI_MAJOR)]
    found = ctypes.util.find_library("flaghook")
    if found and found not in names:
        names.append(found)
    return names


def load(path=None):
    """Loads libflaghook and makes it the one the module functions use.

    `path`, else $FLAGHOOK_LIBRARY, else the system's loader
    (libflaghook.so.0, then ctypes.util.find_library("flaghook")).  Raises
    LibraryError when it cannot be loaded or is too old.
    """
    global _default
    tried = []
    for candidate in _candidates(path):
        try:
            lib = Library(candidate)
        except _errors.LibraryError as e:
            # An explicit choice that fails is reported as such; the
            # system's candidates are tried in turn.
            if path is not None or os.environ.get("FLAGHOOK_LIBRARY"):
                raise
            tried.append(str(e))
            continue
        with _lock:
            _default = lib
        return lib
    raise _errors.LibraryError(
        "libflaghook was not found: install it (make install), set FLAGHOOK_LIBRARY to the path "
        "of libflaghook.so.0, or call flaghook.load(path).  Tried: " + "; ".join(tried))


def library(lib=None):
    """The given Library, else the default one (loaded on first use)."""
    if lib is not None:
        if not isinstance(lib, Library):
            raise TypeError("library must be a flaghook.Library (from flaghook.load())")
        return lib
    return _default if _default is not None else load()
