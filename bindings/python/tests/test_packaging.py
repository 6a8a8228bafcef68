"""The in-tree build backend makes a correct, reproducible purelib wheel
and a self-contained sdist; the sources stay Python 3.9 syntax."""

import ast
import base64
import csv
import hashlib
import importlib.util
import io
import os
import shutil
import sys
import tarfile
import tempfile
import unittest
import zipfile

from support import PACKAGE


def backend(directory=PACKAGE):
    spec = importlib.util.spec_from_file_location("flaghook_build_under_test",
                                                  os.path.join(directory, "flaghook_build.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def version():
    scope = {}
    with open(os.path.join(PACKAGE, "flaghook", "_version.py"), encoding="utf-8") as f:
        exec(f.read(), scope)
    return scope["__version__"]


class WheelTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.be = backend()

    def test_pep517_hooks(self):
        for hook in ("get_requires_for_build_wheel", "get_requires_for_build_sdist",
                     "get_requires_for_build_editable"):
            self.assertEqual(getattr(self.be, hook)(), [])

    def test_wheel_is_correct(self):
        name = self.be.build_wheel(self.tmp)
        v = version()
        self.assertEqual(name, "flaghook-{}-py3-none-any.whl".format(v))
        info = "flaghook-{}.dist-info/".format(v)
        with zipfile.ZipFile(os.path.join(self.tmp, name)) as zf:
            names = zf.namelist()
            self.assertIn("flaghook/__init__.py", names)
            self.assertIn("flaghook/_client.py", names)
            self.assertFalse([n for n in names if "__pycache__" in n or n.endswith(".pyc")])
            for part in ("METADATA", "WHEEL", "RECORD", "LICENSE"):
                self.assertIn(info + part, names)
            self.assertFalse([n for n in names if not (n.startswith("flaghook/") or n.startswith(info))])
            wheel = zf.read(info + "WHEEL").decode()
            self.assertIn("Wheel-Version: 1.0\n", wheel)
            self.assertIn("Root-Is-Purelib: true\n", wheel)
            self.assertIn("Tag: py3-none-any\n", wheel)
            meta = zf.read(info + "METADATA").decode()
            head = meta.split("\n\n", 1)[0].splitlines()
            self.assertIn("Metadata-Version: 2.1", head)
            self.assertIn("Name: flaghook", head)
            self.assertIn("Version: " + v, head)
            self.assertIn("Requires-Python: >=3.9", head)
            # RECORD lists every other file with its sha256 and size.
            rows = list(csv.reader(io.StringIO(zf.read(info + "RECORD").decode())))
            recorded = {row[0]: row for row in rows}
            self.assertEqual(set(recorded), set(names))
            self.assertEqual(recorded[info + "RECORD"][1:], ["", ""])
            for path, algo_digest, size in rows:
                if path == info + "RECORD":
                    continue
                data = zf.read(path)
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                self.assertEqual(algo_digest, "sha256=" + digest.decode(), path)
                self.assertEqual(int(size), len(data), path)
            # The package's own files, byte for byte.
            for n in names:
                if n.startswith("flaghook/"):
                    with open(os.path.join(PACKAGE, n), "rb") as f:
                        self.assertEqual(zf.read(n), f.read(), n)

    def test_reproducible(self):
        a, b = os.path.join(self.tmp, "a"), os.path.join(self.tmp, "b")
        os.mkdir(a)
        os.mkdir(b)
        for d in (a, b):
            self.be.build_wheel(d)
            self.be.build_sdist(d)
        for name in os.listdir(a):
            with open(os.path.join(a, name), "rb") as fa, open(os.path.join(b, name), "rb") as fb:
                self.assertEqual(fa.read(), fb.read(), name)

    def test_metadata_hook_matches_the_wheel(self):
        info = self.be.prepare_metadata_for_build_wheel(self.tmp)
        with open(os.path.join(self.tmp, info, "METADATA"), "rb") as f:
            meta = f.read()
        name = self.be.build_wheel(self.tmp)
        with zipfile.ZipFile(os.path.join(self.tmp, name)) as zf:
            self.assertEqual(zf.read(info + "/METADATA"), meta)

    def test_editable_wheel_points_here(self):
        name = self.be.build_editable(self.tmp)
        with zipfile.ZipFile(os.path.join(self.tmp, name)) as zf:
            pth = [n for n in zf.namelist() if n.endswith(".pth")]
            self.assertEqual(len(pth), 1)
            self.assertEqual(zf.read(pth[0]).decode().strip(), PACKAGE)

    def test_sdist_builds_a_wheel(self):
        name = self.be.build_sdist(self.tmp)
        base = "flaghook-" + version()
        self.assertEqual(name, base + ".tar.gz")
        with tarfile.open(os.path.join(self.tmp, name)) as tf:
            members = tf.getnames()
            for f in ("PKG-INFO", "pyproject.toml", "flaghook_build.py", "README.md", "LICENSE",
                      "flaghook/__init__.py"):
                self.assertIn(base + "/" + f, members)
            self.assertTrue(all(m.startswith(base + "/") for m in members))
            if hasattr(tarfile, "data_filter"):
                tf.extractall(self.tmp, filter="data")
            else:
                tf.extractall(self.tmp)
        tree = os.path.join(self.tmp, base)
        out = os.path.join(self.tmp, "out")
        os.mkdir(out)
        wheel = backend(tree).build_wheel(out)
        with open(os.path.join(out, wheel), "rb") as f1:
            rebuilt = f1.read()
        self.be.build_wheel(self.tmp)
        with open(os.path.join(self.tmp, wheel), "rb") as f2:
            self.assertEqual(rebuilt, f2.read())


class SyntaxTest(unittest.TestCase):
    """Python 3.9: no match statements, no `X | Y` in annotations (they
    are evaluated at run time), nothing newer than 3.9's grammar."""

    def sources(self):
        out = [os.path.join(PACKAGE, "flaghook_build.py"), os.path.join(PACKAGE, "example.py")]
        for folder in ("flaghook", "tests"):
            d = os.path.join(PACKAGE, folder)
            out += [os.path.join(d, n) for n in sorted(os.listdir(d)) if n.endswith(".py")]
        return out

    def test_python39(self):
        for path in self.sources():
            with open(path, encoding="utf-8") as f:
                source = f.read()
            with self.subTest(path=os.path.relpath(path, PACKAGE)):
                tree = ast.parse(source, path, feature_version=(3, 9))
                for node in ast.walk(tree):
                    self.assertNotEqual(type(node).__name__, "Match")
                    annotations = []
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        annotations.append(node.returns)
                        args = node.args
                        annotations += [a.annotation for a in args.args + args.kwonlyargs]
                    if isinstance(node, ast.AnnAssign):
                        annotations.append(node.annotation)
                    for ann in annotations:
                        for sub in ast.walk(ann) if ann is not None else ():
                            self.assertFalse(isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.BitOr),
                                             "X | Y annotation at line {}".format(sub.lineno))

    def test_running_interpreter_is_supported(self):
        self.assertGreaterEqual(sys.version_info[:2], (3, 9))


if __name__ == "__main__":
    unittest.main()
