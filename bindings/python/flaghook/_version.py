"""The package's version and the oldest library it runs on.

flaghook_build.py reads __version__ from this file (by text, without
importing the package), so it is written once, here.
"""

__version__ = "0.1.0"

# flaghook_version_number() of the oldest libflaghook with the layout-free
# API this package calls ("For bindings" in flaghook.h): 0xMMmmpp.
MIN_LIBRARY_VERSION = 0x000100
# The soname's major version this package is written for.
LIBRARY_ABI_MAJOR = 0
