"""The flaghook package's PEP 517 build backend, in the tree.

It needs nothing but the standard library (zipfile, tarfile, hashlib), so
`pip install ./bindings/python` works offline with Debian's python3-venv
and nothing else: no setuptools, no wheel, no hatchling.

It builds a pure-Python wheel (flaghook/*.py plus a .dist-info with
METADATA, WHEEL, LICENSE and RECORD), an editable wheel (a .pth file that
points at this directory) and an sdist.  Archives are reproducible: every
timestamp is SOURCE_DATE_EPOCH, or 1980-01-01 when it is not set.

The package's metadata is here (this is the only place it is written);
its version is read from flaghook/_version.py.
"""

import base64
import gzip
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = "flaghook"
SUMMARY = ("Flagsmith-compatible webhooks from Python: render, sign, verify and deliver "
           "through libflaghook (ctypes)")
REQUIRES_PYTHON = ">=3.9"
LICENSE = "MIT"
CLASSIFIERS = [
    "License :: OSI Approved :: MIT License",
    "Operating System :: POSIX :: Linux",
    "Programming Language :: Python :: 3",
    "Programming Language :: Python :: 3 :: Only",
    "Topic :: Internet :: WWW/HTTP",
]
TAG = "py3-none-any"
# What the sdist carries besides the package itself.
SDIST_FILES = ["pyproject.toml", "flaghook_build.py", "README.md", "LICENSE", "example.py",
               "run-tests.sh"]


def _version():
    with open(os.path.join(HERE, NAME, "_version.py"), encoding="utf-8") as f:
        match = re.search(r'^__version__ = "([^"]+)"$', f.read(), re.M)
    if not match:
        raise RuntimeError("flaghook/_version.py has no __version__")
    return match.group(1)


def _epoch():
    return max(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")), 315532800)


def _files(folder, suffixes):
    """Files under `folder` (relative to HERE) with those suffixes, sorted."""
    out = []
    for root, dirs, names in os.walk(os.path.join(HERE, folder)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for name in sorted(names):
            if name.endswith(suffixes):
                out.append(os.path.relpath(os.path.join(root, name), HERE).replace(os.sep, "/"))
    return out


def _read(rel):
    with open(os.path.join(HERE, rel), "rb") as f:
        return f.read()


def _metadata():
    lines = [
        "Metadata-Version: 2.1",
        "Name: " + NAME,
        "Version: " + _version(),
        "Summary: " + SUMMARY,
        "License: " + LICENSE,
        "Requires-Python: " + REQUIRES_PYTHON,
    ]
    lines += ["Classifier: " + c for c in CLASSIFIERS]
    lines.append("Description-Content-Type: text/markdown")
    return ("\n".join(lines) + "\n\n").encode("utf-8") + _read("README.md")


def _wheel_file():
    return ("Wheel-Version: 1.0\nGenerator: flaghook_build {}\nRoot-Is-Purelib: true\n"
            "Tag: {}\n".format(_version(), TAG)).encode("ascii")


def _dist_info():
    return "{}-{}.dist-info".format(NAME, _version())


def _dist_info_files():
    info = _dist_info()
    return [(info + "/METADATA", _metadata()), (info + "/WHEEL", _wheel_file()),
            (info + "/LICENSE", _read("LICENSE"))]


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return "{},sha256={},{}".format(path, digest, len(data))


def _write_wheel(directory, entries):
    """Writes entries [(path, bytes)] plus the .dist-info and RECORD."""
    entries = entries + _dist_info_files()
    record_path = _dist_info() + "/RECORD"
    record = "\n".join([_record_line(p, d) for p, d in entries] + [record_path + ",,"]) + "\n"
    entries.append((record_path, record.encode("utf-8")))
    name = "{}-{}-{}.whl".format(NAME, _version(), TAG)
    stamp = time.gmtime(_epoch())[:6]
    tmp = os.path.join(directory, name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in entries:
            info = zipfile.ZipInfo(path, stamp)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    os.replace(tmp, os.path.join(directory, name))
    return name


# ---- PEP 517 ------------------------------------------------------------------

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    info = os.path.join(metadata_directory, _dist_info())
    os.makedirs(info, exist_ok=True)
    for path, data in _dist_info_files():
        with open(os.path.join(metadata_directory, path), "wb") as f:
            f.write(data)
    return _dist_info()


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    entries = [(rel, _read(rel)) for rel in _files(NAME, (".py", ".typed"))]
    return _write_wheel(wheel_directory, entries)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """A wheel whose only content is a .pth file naming this directory."""
    pth = (HERE + "\n").encode("utf-8")
    return _write_wheel(wheel_directory, [("_flaghook_editable.pth", pth)])


def build_sdist(sdist_directory, config_settings=None):
    base = "{}-{}".format(NAME, _version())
    name = base + ".tar.gz"
    files = [f for f in SDIST_FILES if os.path.exists(os.path.join(HERE, f))]
    files += _files(NAME, (".py", ".typed")) + _files("tests", (".py",))
    pkg_info = _metadata()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for rel, data in [("PKG-INFO", pkg_info)] + [(f, _read(f)) for f in files]:
            info = tarfile.TarInfo(base + "/" + rel)
            info.size = len(data)
            info.mtime = _epoch()
            info.mode = 0o755 if rel.endswith(".sh") else 0o644
            info.uname = info.gname = "root"
            tf.addfile(info, io.BytesIO(data))
    tmp = os.path.join(sdist_directory, name + ".tmp")
    with open(tmp, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=_epoch()) as gz:
            gz.write(raw.getvalue())
    os.replace(tmp, os.path.join(sdist_directory, name))
    return name
