"""Build script: the optional cffi extension ``pytcp._native`` (everything else is in
pyproject.toml).

The extension is optional: when no C compiler is present or the build fails, installation
still succeeds with a warning and pytcp runs on the pure-Python fallback
(``pytcp._pyfallback``); ``pytcp.native.HAVE_NATIVE`` then reports ``False``.
"""

from __future__ import annotations

import sys
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

_WARNING = (
    "\n*** WARNING: could not build the C extension pytcp._native ({err}).\n"
    "*** pytcp will run on its pure-Python fallback (slower checksums).\n"
    "*** Install a C compiler and the Python headers (e.g. apt-get install gcc python3-dev)\n"
    "*** and reinstall to get it.\n"
)


class OptionalBuildExt(build_ext):
    """``build_ext`` that turns any failure to build an extension into a warning."""

    _failed = False

    def run(self) -> None:
        try:
            super().run()
        except Exception as err:  # noqa: BLE001 - any failure only loses the speed-up
            self._warn(err)

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as err:  # noqa: BLE001
            self._warn(err)

    def _warn(self, err: BaseException) -> None:
        # After a failed compile, the editable install's copy step fails too: warn once.
        if not self._failed:
            self._failed = True
            sys.stderr.write(_WARNING.format(err=err))


setup(
    cffi_modules=["native/build_native.py:ffibuilder"],
    cmdclass={"build_ext": OptionalBuildExt},
)
