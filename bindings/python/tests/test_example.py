"""The README's example (example.py, or $FLAGHOOK_EXAMPLE: a file
extracted from the README) renders, signs and delivers one FLAG_UPDATED
event to a loopback receiver, which checks the signature."""

import json
import os
import subprocess
import sys
import unittest

import flaghook

from support import PACKAGE, WAIT, Receiver

EXAMPLE = os.environ.get("FLAGHOOK_EXAMPLE") or os.path.join(PACKAGE, "example.py")
SECRET = "example-secret"


class ExampleTest(unittest.TestCase):
    def run_example(self, url, secret=SECRET):
        env = dict(os.environ, WEBHOOK_URL=url, FLAGHOOK_SECRET=secret)
        return subprocess.run([sys.executable, EXAMPLE], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=WAIT)

    def test_short(self):
        with open(EXAMPLE, encoding="utf-8") as f:
            self.assertLessEqual(len(f.read().splitlines()), 30)

    def test_delivers_signed(self):
        with Receiver(secret=SECRET.encode()) as rcv:
            p = self.run_example(rcv.url)
            self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())
            [req] = rcv.requests
        self.assertIs(req["signature_ok"], True)
        out = p.stdout.decode()
        self.assertIn("X-Flagsmith-Signature: " + req["headers"]["x-flagsmith-signature"], out)
        self.assertIn("delivered 200", out)
        body = json.loads(req["body"])
        self.assertEqual(body["event_type"], "FLAG_UPDATED")
        self.assertEqual(body["data"]["new_state"]["feature"]["name"], "dark_mode")
        # The body is the library's rendering of the event received.
        self.assertEqual(flaghook.render(body), req["body"])

    def test_reports_a_failure(self):
        with Receiver(status=500) as rcv:
            p = self.run_example(rcv.url)
        self.assertEqual(p.returncode, 1)
        self.assertIn("500", p.stdout.decode())


if __name__ == "__main__":
    unittest.main()
