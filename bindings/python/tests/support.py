"""What the tests share: paths, sample events, and a loopback receiver.

The receiver is http.server in a thread on 127.0.0.1:0.  It records every
request (path, headers, body) and checks X-Flagsmith-Signature with
Python's own hmac, not the library's, so the library's signing is judged by
an independent implementation.  It can hold its replies (a gate) to play a
slow receiver, and answer with a chosen status.
"""

import copy
import hashlib
import hmac
import http.server
import json
import logging
import os
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(PACKAGE))
GOLDEN = os.path.join(REPO, "tests", "golden")

# The library's log records (a delivery given up, ...) are expected in
# these tests; assertLogs still sees them.
logging.getLogger("flaghook").addHandler(logging.NullHandler())

# Generous: the tests must pass on a loaded machine; they wait on
# conditions, and these are only the limits of those waits.
WAIT = float(os.environ.get("FLAGHOOK_TEST_WAIT", "60"))


def vectors_dir():
    """$FLAGHOOK_VECTORS, else ../shared/vectors beside the repository,
    else the repository's tests/vectors."""
    env = os.environ.get("FLAGHOOK_VECTORS")
    if env:
        return env
    shared = os.path.join(os.path.dirname(REPO), "shared", "vectors")
    if os.path.isdir(shared):
        return shared
    return os.path.join(REPO, "tests", "vectors")


def load_vectors(name):
    with open(os.path.join(vectors_dir(), name), encoding="utf-8") as f:
        return json.load(f)


def feature_state(enabled=True, value=None, environment_id=1, name="dark_mode"):
    return {
        "enabled": enabled,
        "environment": {"id": environment_id, "name": "Production"},
        "feature": {
            "created_date": "2024-06-01T12:00:00.000000Z",
            "default_enabled": False,
            "description": None,
            "id": 7,
            "initial_value": None,
            "name": name,
            "project": {"id": 1, "name": "Web"},
            "type": "STANDARD",
        },
        "feature_segment": None,
        "feature_state_value": value,
        "identity": None,
        "identity_identifier": None,
        "multivariate_feature_state_values": [],
    }


def flag_updated(environment_id=1, n=0):
    """A FLAG_UPDATED event for an environment; n varies the body."""
    return {
        "event_type": "FLAG_UPDATED",
        "data": {
            "changed_by": "alice@example.com",
            "new_state": feature_state(True, n, environment_id),
            "previous_state": feature_state(False, None, environment_id),
            "timestamp": "2024-06-01T12:00:00.000001Z",
        },
    }


def deep(event):
    return copy.deepcopy(event)


class Receiver:
    """A webhook receiver on loopback.  Use as a context manager."""

    def __init__(self, secret=None, status=200, hold=False):
        self.secret = secret
        self.status = status
        self.requests = []
        self.cond = threading.Condition()
        self.gate = threading.Event()
        if not hold:
            self.gate.set()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True      # no 40 ms per reply

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                sig = headers.get("x-flagsmith-signature")
                ok = None
                if receiver.secret is not None:
                    want = hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
                    ok = sig is not None and hmac.compare_digest(sig, want)
                with receiver.cond:
                    receiver.requests.append({"path": self.path, "headers": headers,
                                              "body": body, "signature_ok": ok})
                    receiver.cond.notify_all()
                # A slow receiver holds its reply until the test opens the
                # gate (or the test's limit passes).
                receiver.gate.wait(WAIT)
                reply = b"ok"
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    # The sender gave up on this request (a client freed
                    # while its deliveries were held): nothing to answer.
                    self.close_connection = True

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            # The library opens up to max_in_flight (16) connections at
            # once; the default backlog of 5 would drop SYNs (1 s resends).
            request_queue_size = 128

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:{}/hook".format(self.server.server_address[1])

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count, timeout=WAIT):
        """Waits until `count` requests have arrived; returns them."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the receiver got {} requests, not {}, in {:g} s".format(
                        len(self.requests), count, timeout))
                self.cond.wait(left)
            return list(self.requests)
