"""cffi build script for ``pytcp._native`` (out-of-line API mode), from ``native/pytcp_native.c``.

Used by ``setup.py`` (``cffi_modules=["native/build_native.py:ffibuilder"]``); it can also be
run directly from the repository root to build the extension in place:
``python3 native/build_native.py``.
"""

from __future__ import annotations

import os

from cffi import FFI

_HERE = os.path.dirname(os.path.abspath(__file__))

CDEF = """
uint32_t pytcp_csum_partial(const char *buf, size_t len, uint32_t start);
void pytcp_ring_write(char *ring, size_t size, size_t pos, const char *src, size_t n);
void pytcp_ring_read(const char *ring, size_t size, size_t pos, char *dst, size_t n);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
with open(os.path.join(_HERE, "pytcp_native.c"), encoding="utf-8") as _f:
    _SOURCE = _f.read()
ffibuilder.set_source(
    "pytcp._native",
    _SOURCE,
    extra_compile_args=["-O3"],
)

if __name__ == "__main__":
    # In-place build: writes pytcp/_native*.so next to pytcp/native.py.
    ffibuilder.compile(tmpdir=os.path.join(_HERE, ".."), verbose=True)
