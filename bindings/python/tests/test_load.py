"""Finding and checking the library; constants and error codes from it."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import flaghook

from support import HERE, PACKAGE

LIBRARY = os.environ.get("FLAGHOOK_LIBRARY", "")


def run_python(code, **env_changes):
    env = dict(os.environ)
    for k, v in env_changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=HERE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)


class LoadTest(unittest.TestCase):
    def test_installed_copy_is_tested(self):
        # run-tests.sh installs the package into a venv and says where.
        venv = os.environ.get("FLAGHOOK_EXPECT_INSTALLED")
        if not venv:
            self.skipTest("testing the source tree, not an installed copy")
        self.assertTrue(os.path.realpath(flaghook.__file__).startswith(os.path.realpath(venv)),
                        flaghook.__file__)
        self.assertFalse(os.path.realpath(flaghook.__file__).startswith(PACKAGE))

    def test_explicit_path_and_environment(self):
        self.assertTrue(LIBRARY, "FLAGHOOK_LIBRARY names the library under test")
        lib = flaghook.load(LIBRARY)
        self.assertIsInstance(lib, flaghook.Library)
        self.assertRegex(lib.version, r"^\d+\.\d+\.\d+$")
        self.assertGreaterEqual(lib.version_number, 0x000100)
        self.assertIs(flaghook.library(), lib)
        self.assertEqual(flaghook.version(), lib.version)
        # library= picks one explicitly.
        self.assertEqual(flaghook.sign(b"k", b"x", library=lib), flaghook.sign(b"k", b"x"))

    def test_import_does_not_load(self):
        p = run_python("import flaghook\n"
                       "try:\n    flaghook.sign(b'k', b'x')\n"
                       "except flaghook.LibraryError as e:\n    print('LibraryError:', e)\n",
                       FLAGHOOK_LIBRARY="/nonexistent/libflaghook.so.0")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"LibraryError:", p.stdout)
        self.assertIn(b"/nonexistent/libflaghook.so.0", p.stdout)

    def test_system_loader(self):
        # Without FLAGHOOK_LIBRARY, libflaghook.so.0 comes from the loader's path.
        d = os.path.dirname(LIBRARY)
        path = d + (":" + os.environ["LD_LIBRARY_PATH"] if os.environ.get("LD_LIBRARY_PATH") else "")
        p = run_python("import flaghook; print(flaghook.load().path)", FLAGHOOK_LIBRARY=None,
                       LD_LIBRARY_PATH=path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"libflaghook.so", p.stdout)

    def test_not_found_says_what_to_do(self):
        # (In a fresh process: this one has the library loaded already.)
        p = run_python("import ctypes, ctypes.util\n"
                       "try:\n    ctypes.CDLL('libflaghook.so.0')\n"
                       "except OSError:\n    print(ctypes.util.find_library('flaghook'))\n"
                       "else:\n    print('installed')\n", FLAGHOOK_LIBRARY=None, LD_LIBRARY_PATH=None)
        if p.stdout.strip() != b"None":
            self.skipTest("libflaghook is installed on the loader's path here")
        p = run_python("import flaghook\nflaghook.load()", FLAGHOOK_LIBRARY=None,
                       LD_LIBRARY_PATH=None)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"LibraryError", p.stderr)
        self.assertIn(b"FLAGHOOK_LIBRARY", p.stderr)

    def test_constants_come_from_the_library(self):
        consts = flaghook.constants()
        self.assertEqual(consts["FLAGHOOK_EINVAL"], flaghook.constant("FLAGHOOK_EINVAL"))
        self.assertLess(consts["FLAGHOOK_EINVAL"], 0)
        self.assertGreater(consts["FLAGHOOK_CLIENT_OPTIONS_VERSION"], 0)
        with self.assertRaises(flaghook.NotFoundError) as cm:
            flaghook.constant("FLAGHOOK_NO_SUCH_THING")
        self.assertEqual(cm.exception.name, "FLAGHOOK_ENOTFOUND")
        lib = flaghook.library()
        codes = {n: v for n, v in consts.items() if n.startswith("FLAGHOOK_E") and v < 0}
        self.assertIn("FLAGHOOK_EDELIVERY", codes)
        for name, value in codes.items():
            e = lib.error(value)
            self.assertEqual((e.code, e.name), (value, name))
            self.assertIsInstance(e, flaghook.FlaghookError)
            self.assertTrue(e.message)      # flaghook_strerror's text
        self.assertIsInstance(lib.error(codes["FLAGHOOK_ETIMEOUT"]), TimeoutError)
        self.assertIsInstance(lib.error(codes["FLAGHOOK_EINVAL"]), ValueError)


STUB = r"""
#include <stdint.h>
uint32_t flaghook_version_number(void) { return VERSION; }
const char *flaghook_version(void) { return "stub"; }
"""


@unittest.skipUnless(shutil.which("cc"), "needs a C compiler for the stub libraries")
class OldLibraryTest(unittest.TestCase):
    def stub(self, version):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        src = os.path.join(d, "stub.c")
        with open(src, "w") as f:
            f.write(STUB)
        out = os.path.join(d, "libflaghook.so.0")
        subprocess.run(["cc", "-shared", "-fPIC", "-DVERSION=" + str(version), src, "-o", out],
                       check=True, timeout=120)
        return out

    def test_too_old(self):
        with self.assertRaises(flaghook.LibraryError) as cm:
            flaghook.Library(self.stub(0x000009))
        msg = str(cm.exception)
        self.assertIn("0.0.9", msg)
        self.assertIn("too old", msg)
        self.assertIn("0.1.0", msg)

    def test_other_abi(self):
        with self.assertRaises(flaghook.LibraryError) as cm:
            flaghook.Library(self.stub(0x010000))
        self.assertIn("1.0.0", str(cm.exception))

    def test_without_the_bindings_api(self):
        with self.assertRaises(flaghook.LibraryError) as cm:
            flaghook.Library(self.stub(0x000100))
        self.assertIn("flaghook_render_json", str(cm.exception))

    def test_explicit_bad_path_is_reported(self):
        with self.assertRaises(flaghook.LibraryError) as cm:
            flaghook.load(self.stub(0x000009))
        self.assertIn("too old", str(cm.exception))
        # The default library is still the good one.
        self.assertEqual(flaghook.library().path, LIBRARY)


if __name__ == "__main__":
    unittest.main()
