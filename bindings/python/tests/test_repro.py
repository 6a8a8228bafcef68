"""The issue's two reproductions, each in a child process so that a crash
or a hang fails the test instead of taking the suite down."""

import os
import subprocess
import sys
import unittest

from support import HERE, WAIT


def child(script):
    return subprocess.run([sys.executable, "-X", "faulthandler", os.path.join(HERE, script)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=WAIT * 4,
                          cwd=HERE)


class ReproTest(unittest.TestCase):
    def test_garbage_collected_client_does_not_crash(self):
        p = child("repro_gc.py")
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, "exit %d\n%s\n%s" % (p.returncode, out, p.stderr.decode()))
        self.assertEqual(out.count("collected with deliveries in flight"), 4, out)
        self.assertIn("exiting with a client open", out)
        self.assertNotIn(b"Fatal Python error", p.stderr)

    def test_close_after_flush_with_results_piled_up(self):
        p = child("repro_hang.py")
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, "exit %d\n%s\n%s" % (p.returncode, out, p.stderr.decode()))
        self.assertEqual(out.count("close() took"), 3, out)
        self.assertTrue(out.rstrip().endswith("ok"), out)


if __name__ == "__main__":
    unittest.main()
