"""Every input the fuzzers found a problem with, replayed through its target (issue 7 item
7): each one failed before its fix. Found with ``tests/fuzz/run.py``; the inputs are small
enough to keep inline."""

from __future__ import annotations

import pytest

from tests.fuzz.targets import TARGETS

from pytcp.script.parser import ScriptSyntaxError, parse_script

# (target, input, what was wrong)
FOUND: list[tuple[str, bytes, str]] = [
    ("script", b"0 close(3) = 01\n",
     "a return value int() refused escaped as a bare ValueError, not ScriptSyntaxError"),
]


@pytest.mark.parametrize(("target", "data", "why"), FOUND, ids=[f[2][:40] for f in FOUND])
def test_found_input_passes_its_target(target: str, data: bytes, why: str) -> None:
    TARGETS[target](data)


def test_bad_return_value_is_a_syntax_error() -> None:
    with pytest.raises(ScriptSyntaxError, match="bad return value '01'"):
        parse_script("0 close(3) = 01\n", "x.pkt")
