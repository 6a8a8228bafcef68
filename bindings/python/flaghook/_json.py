"""What goes into the library as JSON: events, options, and options that
carry a secret."""

import ctypes
import datetime
import json

_HEX = b"0123456789abcdef"


def _default(value):
    # Times: an aware datetime as the payload's own form, in UTC.
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise TypeError("a naive datetime is ambiguous in an event: give it a tzinfo "
                            "(datetime.timezone.utc)")
        return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError("bytes in an event: give text as str")
    raise TypeError("a {} is not JSON: events hold dicts, lists, str, int, float, bool, "
                    "None and aware datetimes".format(type(value).__name__))


def dumps(value):
    """Compact JSON text of a Python value, as UTF-8 bytes.

    Python ints stay exact (the library reads every int64 exactly); a lone
    surrogate in a str goes through as the bytes it would be, so that the
    library's UTF-8 check reports it with its JSON path.
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                      default=_default)
    return text.encode("utf-8", "surrogatepass")


def event_bytes(event):
    """An event given as a dict, JSON text (str) or JSON bytes."""
    if isinstance(event, (bytes, bytearray, memoryview)):
        return bytes(event)
    if isinstance(event, str):
        return event.encode("utf-8", "surrogatepass")
    if isinstance(event, dict):
        return dumps(event)
    raise TypeError("an event is a dict, or its JSON as str or bytes, not {}".format(
        type(event).__name__))


def as_text(value, what):
    """A str argument the library takes NUL-terminated: str, or ASCII/UTF-8
    bytes; an embedded NUL would cut it short silently, so it is refused."""
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogatepass")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value)
    else:
        raise TypeError("{} must be str, not {}".format(what, type(value).__name__))
    if b"\0" in value:
        raise ValueError("{} contains a NUL character".format(what))
    return value


def as_secret(value, what="secret"):
    """A secret as bytes: bytes as given, str as its UTF-8."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError("{} must be bytes or str, not {}".format(what, type(value).__name__))


class SecretJSON:
    """A JSON object whose secret members are written straight into a
    ctypes buffer, which wipe() zeroes once the library has copied them.

    `public` is a dict without secrets; `hex_members` maps a key to bytes
    written as lowercase hex; `string_members` a key to a JSON-safe byte
    string (json_safe_string) written as a JSON string; `string_lists` a
    key to a list of them, written as a JSON array of strings.  Best
    effort: Python may hold other copies of a str secret the caller gave.
    """

    def __init__(self, public, hex_members=None, string_members=None, string_lists=None):
        head = dumps(public)
        pieces = [("lit", head[:-1])]   # "{...", closed below
        first = head == b"{}"
        for kind, members in (("hex", hex_members), ("raw", string_members)):
            for key, secret in (members or {}).items():
                pieces.append(("lit", (b"" if first else b",") + dumps(key) + b':"'))
                pieces.append((kind, secret))
                pieces.append(("lit", b'"'))
                first = False
        for key, items in (string_lists or {}).items():
            pieces.append(("lit", (b"" if first else b",") + dumps(key) + b":["))
            for i, item in enumerate(items):
                pieces.append(("lit", b',"' if i else b'"'))
                pieces.append(("raw", item))
                pieces.append(("lit", b'"'))
            pieces.append(("lit", b"]"))
            first = False
        pieces.append(("lit", b"}"))
        size = sum(2 * len(data) if kind == "hex" else len(data) for kind, data in pieces)
        self.buf = ctypes.create_string_buffer(size + 1)
        view = memoryview(self.buf).cast("B")
        pos = 0
        for kind, data in pieces:
            if kind == "hex":
                for b in data:
                    view[pos] = _HEX[b >> 4]
                    view[pos + 1] = _HEX[b & 15]
                    pos += 2
            else:
                view[pos:pos + len(data)] = data
                pos += len(data)
        view.release()
        self._copies = [data for kind, data in pieces if isinstance(data, bytearray)]

    def wipe(self):
        ctypes.memset(self.buf, 0, len(self.buf))
        for data in self._copies:
            data[:] = bytes(len(data))


def json_string_body(value, what):
    """A secret (bytes, or str as UTF-8) as the inside of a JSON string:
    quote, backslash and control characters escaped, the rest as is."""
    data = as_secret(value, what)
    if b"\0" in data:
        raise ValueError("{} contains a NUL character".format(what))
    out = bytearray()
    for b in data:
        if b in (0x22, 0x5c):
            out += b"\\" + bytes([b])
        elif b < 0x20:
            out += b"\\u%04x" % b
        else:
            out.append(b)
    return out      # a bytearray: SecretJSON.wipe() zeroes it too
