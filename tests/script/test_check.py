"""``pytcp script --check``: parse only, errors as FILE:LINE: message, exit 1/2."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytcp.script.runner import main


def test_check_passes_a_good_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "ok.pkt"
    p.write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(3) = 0\n")
    assert main(["--check", str(p)]) == 0
    assert capsys.readouterr().out.strip() == "1 parsed, 0 with errors"


def test_check_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "ok.pkt"
    good.write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    bad = tmp_path / "bad.pkt"
    bad.write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\n+0 > S 0:0(0) bogus 7\n")
    assert main(["--check", str(good), str(bad)]) == 1
    out = capsys.readouterr()
    assert out.err.splitlines()[0].startswith(f"{bad}:3: ")
    assert out.out.strip() == "1 parsed, 1 with errors"


def test_check_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 2
    assert main(["--bogus"]) == 2
