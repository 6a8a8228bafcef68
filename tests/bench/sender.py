#!/usr/bin/env python3
"""The baseline for deliver_vs_python_requests: what the Flagsmith server
does per webhook, in one thread, as fast as it can.

api/webhooks/webhooks.py, _call_webhook():

    headers = {"content-type": "application/json"}
    json_data = json.dumps(data, sort_keys=True, cls=DjangoJSONEncoder)
    if webhook.secret:
        signature = sign_payload(json_data, key=webhook.secret)
        headers.update({FLAGSMITH_SIGNATURE_HEADER: signature})
    return requests.post(str(webhook.url), data=json_data, headers=headers, timeout=10)

and core/signing.py, sign_payload(): hmac.new(key=key.encode(),
msg=payload.encode(), digestmod=hashlib.sha256).hexdigest().

So per event: serialise the dict, sign it, and a plain requests.post() --
no Session, hence a new TCP connection per webhook, as the server does.
DjangoJSONEncoder only matters for types JSON cannot take (dates, UUIDs,
Decimals); the sample dict has none, so plain json.dumps writes the same
bytes at the same speed (both use the C encoder).

The dict is the environment sample, read from the body libflaghook
rendered; the script first checks that json.dumps(sort_keys=True) gives
back exactly those bytes, so both sides send the same body.

Usage: sender.py URL BODY_FILE [--seconds S] [--warmup S]
The key is FLAGHOOK_BENCH_SECRET.  Prints one figure line:
    python_requests_per_s <rate> deliveries/s
"""
import argparse
import hashlib
import hmac
import json
import os
import sys
import time

import requests


def sign_payload(payload, key):
    return hmac.new(key=key.encode(), msg=payload.encode(), digestmod=hashlib.sha256).hexdigest()


def call_webhook(url, secret, data):
    headers = {"content-type": "application/json"}
    json_data = json.dumps(data, sort_keys=True)
    if secret:
        signature = sign_payload(json_data, key=secret)
        headers.update({"X-Flagsmith-Signature": signature})
    return requests.post(url, data=json_data, headers=headers, timeout=10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("body")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=0.5)
    args = ap.parse_args()
    secret = os.environ.get("FLAGHOOK_BENCH_SECRET", "flaghook-bench-secret-not-a-real-one")

    with open(args.body, "rb") as f:
        rendered = f.read()
    data = json.loads(rendered)
    if json.dumps(data, sort_keys=True).encode() != rendered:
        print("sender.py: json.dumps(sort_keys=True) does not give libflaghook's bytes", file=sys.stderr)
        return 1

    failed = 0
    end_warm = time.monotonic() + args.warmup
    while time.monotonic() < end_warm:
        call_webhook(args.url, secret, data)
    n = 0
    t0 = time.monotonic()
    end = t0 + args.seconds
    while True:
        res = call_webhook(args.url, secret, data)
        if not 200 <= res.status_code <= 299:
            failed += 1
        n += 1
        t1 = time.monotonic()
        if t1 >= end:
            break
    if failed:
        print("sender.py: %d of %d posts were not 2xx" % (failed, n), file=sys.stderr)
    print("sender.py: %s %s, requests %s, %d posts in %.2f s"
          % (sys.executable, sys.version.split()[0], requests.__version__, n, t1 - t0), file=sys.stderr)
    print("python_requests_per_s %.1f deliveries/s" % (n / (t1 - t0)))
    sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
