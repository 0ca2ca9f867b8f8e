"""ring_write / ring_read: copies with wrap-around equal a plain slicing model."""

from __future__ import annotations

import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


def model_write(ring: bytearray, pos: int, src: bytes) -> None:
    for i, b in enumerate(src):
        ring[(pos + i) % len(ring)] = b


def model_read(ring: bytes, pos: int, n: int) -> bytes:
    return bytes(ring[(pos + i) % len(ring)] for i in range(n))


def test_write_wraps_at_the_end(impl: types.ModuleType) -> None:
    ring = bytearray(10)
    impl.ring_write(ring, 7, b"abcdef")
    assert ring == bytearray(b"def\x00\x00\x00\x00abc")
    dst = bytearray(8)
    impl.ring_read(ring, 7, dst, 6)
    assert dst == bytearray(b"abcdef\x00\x00")


def test_full_ring_and_empty_copies(impl: types.ModuleType) -> None:
    ring = bytearray(4)
    impl.ring_write(ring, 2, b"wxyz")
    assert ring == bytearray(b"yzwx")
    impl.ring_write(ring, 1, b"")
    dst = bytearray(b"....")
    impl.ring_read(ring, 3, dst, 0)
    assert dst == bytearray(b"....")
    impl.ring_read(ring, 3, dst, 4)
    assert dst == bytearray(b"xyzw")


def test_position_is_taken_modulo_the_ring(impl: types.ModuleType) -> None:
    ring = bytearray(8)
    impl.ring_write(ring, 8 * 1000 + 6, b"123")
    assert ring == bytearray(b"3\x00\x00\x00\x00\x0012")


def test_misuse_raises_value_error(impl: types.ModuleType) -> None:
    ring = bytearray(4)
    with pytest.raises(ValueError):
        impl.ring_write(ring, 0, b"12345")
    with pytest.raises(ValueError):
        impl.ring_read(ring, 0, bytearray(8), 5)
    with pytest.raises(ValueError):
        impl.ring_read(ring, 0, bytearray(2), 3)


ops = st.lists(
    st.tuples(
        st.sampled_from(["write", "read"]),
        st.integers(0, 10**6),  # position (taken modulo the ring size)
        st.integers(0, 10**6),  # length (taken modulo ring size + 1)
        st.sampled_from(["bytes", "bytearray", "memoryview"]),
        st.integers(0, 255),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 300), script=ops)
def test_ring_equals_slicing_model(impl: types.ModuleType, size: int, script: list) -> None:
    ring = bytearray(size)
    model = bytearray(size)
    for op, pos, length, kind, fill in script:
        n = length % (size + 1)
        if op == "write":
            data = bytes((fill + i) & 0xFF for i in range(n))
            backing = b"\x00" + data  # memoryview starting at an odd address
            src = {"bytes": data, "bytearray": bytearray(data),
                   "memoryview": memoryview(backing)[1:]}[kind]
            impl.ring_write(ring, pos, src)
            model_write(model, pos, data)
            assert ring == model
        else:
            backing2 = bytearray(n + 3)
            dst = memoryview(backing2)[1:1 + n + 1] if kind == "memoryview" else bytearray(n + 1)
            src_ring = {"bytes": bytes(ring), "bytearray": ring,
                        "memoryview": memoryview(ring)}[kind]
            impl.ring_read(src_ring, pos, dst, n)
            assert bytes(dst[:n]) == model_read(model, pos % size, n)
