#!/usr/bin/env python3
"""Reads python-json.json and writes each case's value as a typed token
stream the C test can rebuild exactly (cJSON would round int64 through a
double).  One case per line: NAME_HEX EXPECTED_HEX TOKENS...
Tokens: N, T, F, I<dec>, D<float.hex()>, S<utf8 hex>, [<n>, {<n> then K<hex> before each value.
"""
import json
import sys


def tokens(v, out):
    if v is None:
        out.append("N")
    elif v is True:
        out.append("T")
    elif v is False:
        out.append("F")
    elif isinstance(v, int):
        out.append("I%d" % v)
    elif isinstance(v, float):
        out.append("D" + v.hex())
    elif isinstance(v, str):
        out.append("S" + v.encode("utf-8", "surrogatepass").hex())
    elif isinstance(v, list):
        out.append("[%d" % len(v))
        for x in v:
            tokens(x, out)
    elif isinstance(v, dict):
        out.append("{%d" % len(v))
        for k, x in v.items():
            out.append("K" + k.encode("utf-8").hex())
            tokens(x, out)
    else:
        raise TypeError(type(v))


doc = json.load(open(sys.argv[1], encoding="utf-8"))
for case in doc["cases"]:
    toks = []
    tokens(case["value"], toks)
    print(case["name"].encode().hex(), case["python_json_dumps_sort_keys"].encode().hex(), " ".join(toks))
