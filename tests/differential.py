#!/usr/bin/env python3
"""Judges test_differential's output with Python itself.

Each line: BODY_HEX <TAB> COMPACT <TAB> LEAVES, where LEAVES are the values
the C side put into the event, each 'path|type|payload' joined by ';'.
For every body: it must be ASCII, json.loads must read it, json.dumps(obj,
sort_keys=True) (with the same separators) must give the same bytes back,
and every leaf must sit at its path with its exact type and value.
"""
import datetime
import json
import math
import sys

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def leaf_value(kind, payload):
    if kind == "S":
        return bytes.fromhex(payload).decode("utf-8")
    if kind == "I":
        return int(payload)
    if kind == "D":
        return float.fromhex(payload)
    if kind == "B":
        return payload == "1"
    if kind == "N":
        return None
    if kind == "T":
        style, us = payload.split(":")
        t = EPOCH + datetime.timedelta(microseconds=int(us))
        if style == "S":  # Flagsmith's strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if style == "R":  # REST framework: isoformat, +00:00 as Z
            return t.isoformat().replace("+00:00", "Z")
        raise ValueError(style)
    raise ValueError(kind)


def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


def main(path):
    events = leaves = 0
    failures = []
    with open(path, encoding="ascii") as f:
        for lineno, line in enumerate(f, 1):
            body_hex, compact, packed = line.rstrip("\n").split("\t")
            raw = bytes.fromhex(body_hex)
            try:
                body = raw.decode("ascii")
                obj = json.loads(body)
            except Exception as e:  # noqa: BLE001 - report any parse failure
                failures.append("line %d: not ASCII JSON: %s" % (lineno, e))
                continue
            seps = (",", ":") if compact == "1" else (", ", ": ")
            again = json.dumps(obj, sort_keys=True, separators=seps)
            if again != body:
                failures.append("line %d: json.dumps differs\n ours: %s\n py:   %s" % (lineno, body, again))
            for item in filter(None, packed.split(";")):
                p, kind, payload = item.split("|")
                node = obj
                try:
                    for part in p.split("/"):
                        node = node[int(part[1:])] if part.startswith("#") else node[bytes.fromhex(part).decode()]
                except (KeyError, IndexError, TypeError):
                    failures.append("line %d: no value at %s" % (lineno, p))
                    continue
                want = leaf_value(kind, payload)
                if not same(node, want):
                    failures.append("line %d: at %s got %r want %r" % (lineno, p, node, want))
                leaves += 1
            events += 1
    for msg in failures[:10]:
        print(msg)
    print("differential: %d events, %d values checked, %d mismatches" % (events, leaves, len(failures)))
    return 1 if failures or events == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
