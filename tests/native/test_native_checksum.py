"""RFC 1071 checksum helpers: C == Python == scapy, on any length, offset and start sum."""

from __future__ import annotations

import random
import subprocess
import sys
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.utils import checksum as scapy_checksum

import pytcp._pyfallback as fallback
from pytcp import native


def _buf_from(seed: int, length: int, pattern: str) -> bytes:
    """A cheap large buffer: hypothesis picks (seed, length, pattern), not 64 KiB of draws."""
    if pattern == "zero":
        return bytes(length)
    if pattern == "ones":
        return b"\xff" * length
    return random.Random(seed).randbytes(length)


buffers = st.one_of(
    st.binary(max_size=64),
    st.builds(
        _buf_from,
        st.integers(0, 2**32),
        st.integers(0, 65535 + 8),
        st.sampled_from(["random", "random", "random", "zero", "ones"]),
    ),
)
starts = st.one_of(
    st.sampled_from([0, 1, 0xFFFF, 0x10000, 0xFFFFFFFF]), st.integers(0, 2**32 - 1)
)


def _views(buf: bytes, offset: int) -> list[bytes | bytearray | memoryview]:
    """The same data as bytes, bytearray and memoryviews starting at an odd/even address."""
    data = buf[offset:]
    backing = bytearray(b"\xa5" * 3 + data + b"\x5a" * 3)
    return [
        data,
        bytearray(data),
        memoryview(buf)[offset:],
        memoryview(backing)[3:3 + len(data)],  # odd start inside a larger buffer
    ]


# --- fixed traces -------------------------------------------------------------------------

def test_rfc1071_example(impl: types.ModuleType) -> None:
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert impl.csum_partial(data) == 0xDDF2
    assert impl.checksum(data) == 0x220D


def test_odd_byte_is_high_byte_of_padded_word(impl: types.ModuleType) -> None:
    assert impl.csum_partial(b"\x12") == 0x1200
    assert impl.csum_partial(b"\x12\x34\x56") == 0x1234 + 0x5600


def test_zero_and_negative_zero(impl: types.ModuleType) -> None:
    assert impl.csum_partial(b"") == 0
    assert impl.csum_partial(bytes(100)) == 0
    assert impl.checksum(bytes(100)) == 0xFFFF
    # A nonzero sum never folds to 0: 0xffff + 0x0000 stays 0xffff, 0x8000*2 carries to 1.
    assert impl.csum_partial(b"\xff\xff") == 0xFFFF
    assert impl.csum_partial(b"\x80\x00\x80\x00") == 0x0001
    assert impl.csum_partial(b"", 0x1FFFE) == 0xFFFF
    assert impl.csum_partial(b"", 0xFFFFFFFF) == 0xFFFF


def test_start_is_added(impl: types.ModuleType) -> None:
    assert impl.csum_partial(b"\x00\x01", 0x0002) == 0x0003
    assert impl.csum_partial(b"\xff\xff", 0x0001) == 0x0001  # end-around carry
    assert impl.csum_partial(b"", 0x12345678) == (0x1234 + 0x5678)


def test_pseudo_header_sum_matches_bytes(impl: types.ModuleType) -> None:
    src, dst = 0x0A4D0001, 0xC0A80102
    pseudo = src.to_bytes(4, "big") + dst.to_bytes(4, "big") + bytes([0, 6]) + (1480).to_bytes(2, "big")
    assert impl.pseudo_header_sum(src, dst, 6, 1480) == impl.csum_partial(pseudo)


def test_native_is_the_c_extension_when_loaded() -> None:
    if not native.HAVE_NATIVE:
        pytest.skip("pytcp._native C extension not loaded (not built, or PYTCP_NO_NATIVE is set)")
    assert native.csum_partial is not fallback.csum_partial
    assert type(native._lib).__name__ == "Lib"


def test_pytcp_no_native_forces_fallback() -> None:
    code = "import pytcp.native as n; print(n.HAVE_NATIVE, n.csum_partial.__module__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTCP_NO_NATIVE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": "."},
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()
    assert out == ["False", "pytcp._pyfallback"]


# --- properties ----------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(buf=buffers, offset=st.integers(0, 3), start=starts)
def test_native_equals_fallback_equals_scapy(buf: bytes, offset: int, start: int) -> None:
    data = buf[offset:]
    expect_partial = fallback.csum_partial(data, start)
    # scapy knows no start sum: prepend it as two big-endian words; scapy returns ~sum.
    assert fallback.checksum(data, start) == scapy_checksum(start.to_bytes(4, "big") + data)
    assert expect_partial == ~scapy_checksum(start.to_bytes(4, "big") + data) & 0xFFFF or (
        expect_partial == 0 and start == 0 and not any(data)
    )
    for view in _views(buf, offset):
        assert fallback.csum_partial(view, start) == expect_partial
        if native.HAVE_NATIVE:
            assert native.csum_partial(view, start) == expect_partial
            assert native.checksum(view, start) == ~expect_partial & 0xFFFF


@settings(max_examples=300, deadline=None)
@given(
    buf=st.one_of(
        st.binary(min_size=2, max_size=64),
        st.builds(_buf_from, st.integers(0, 2**32), st.integers(2, 3000), st.just("random")),
    ),
    word_index=st.integers(0, 10**6),
    new=st.integers(0, 0xFFFF),
    start=st.integers(1, 2**32 - 1),  # a pseudo-header sum: never zero on the wire
)
def test_csum_update16_equals_full_recompute(
    impl: types.ModuleType, buf: bytes, word_index: int, new: int, start: int
) -> None:
    i = (word_index % (len(buf) // 2)) * 2
    old = int.from_bytes(buf[i:i + 2], "big")
    before = impl.checksum(buf, start)
    changed = bytearray(buf)
    changed[i:i + 2] = new.to_bytes(2, "big")
    assert impl.csum_update16(before, old, new) == impl.checksum(changed, start)


def test_memoryview_of_wider_items_counts_bytes(impl: types.ModuleType) -> None:
    data = bytes(range(1, 8)) + b"\x09"  # 8 bytes
    wide = memoryview(bytearray(data)).cast("H")
    assert impl.csum_partial(wide) == impl.csum_partial(data)
