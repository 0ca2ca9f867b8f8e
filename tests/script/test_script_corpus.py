"""Guards on the script corpus itself: every script parses and names the rule it checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytcp.script.parser import PacketLine, parse_file

SCRIPTS = sorted((Path(__file__).resolve().parents[1] / "scripts").rglob("*.pkt"))


def test_there_are_scripts_in_every_area() -> None:
    areas = {p.parent.name for p in SCRIPTS}
    assert len(SCRIPTS) >= 60
    assert {"handshake", "close", "data", "rst", "window", "options", "retransmit", "sack",
            "timestamps", "rfc5961", "time-wait", "keepalive", "zero-window", "urgent",
            "listen"} <= areas


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_script_parses_and_names_its_rule(path: Path) -> None:
    text = path.read_text()
    first = text.splitlines()[0]
    assert first.startswith("// ") and ("RFC" in first or "MUST" in first), first
    script = parse_file(str(path))
    # Every script expects at least one packet from the stack or checks a call's result.
    assert script.lines
    assert any(isinstance(ln, PacketLine) and ln.direction == ">" for ln in script.lines) or \
        any(not isinstance(ln, PacketLine) for ln in script.lines)
