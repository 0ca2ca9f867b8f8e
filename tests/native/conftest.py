"""Fixtures for tests/native: the two implementations of pytcp.native's helpers."""

from __future__ import annotations

import types

import pytest

import pytcp._pyfallback as fallback
from pytcp import native

NATIVE_SKIP_REASON = (
    "pytcp._native C extension not loaded (not built, or PYTCP_NO_NATIVE is set); "
    "build it with `pip install -e .` or `python3 native/build_native.py`"
)


def _impls() -> list[object]:
    return [
        pytest.param(fallback, id="python"),
        pytest.param(
            native,
            id="native",
            marks=pytest.mark.skipif(not native.HAVE_NATIVE, reason=NATIVE_SKIP_REASON),
        ),
    ]


@pytest.fixture(params=_impls(), scope="module")
def impl(request: pytest.FixtureRequest) -> types.ModuleType:
    """Each implementation in turn: the pure-Python fallback, then the C extension."""
    return request.param  # type: ignore[no-any-return]
