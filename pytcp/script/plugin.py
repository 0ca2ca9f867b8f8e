"""pytest plugin: every ``*.pkt`` file is one test item (``path.pkt::script``).

This module owns collection and reporting of packet scripts under pytest. A failure prints the
script line, the expected packet (or return value) and the actual one. A script with a
``// pytcp: xfail=<reason>`` header is marked xfail (strict) with that reason, so a known
engine bug is reported, not hidden, and a script that passes while marked fails the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytcp.script.parser import ScriptSyntaxError, parse_file
from pytcp.script.runner import ScriptFailure, run_script


class ScriptError(Exception):
    """Raised by a failing script item; carries the long failure text."""


class ScriptFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield ScriptItem.from_parent(self, name="script")


class ScriptItem(pytest.Item):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        try:
            script = parse_file(str(self.path))
            reason = script.settings.get("xfail")
        except (ScriptSyntaxError, OSError):
            reason = None
        if reason:
            # Strict: a marked script that passes fails the run, so a stale marker cannot
            # hide a regression or a fix nobody noticed.
            self.add_marker(pytest.mark.xfail(reason=reason, strict=True))

    def runtest(self) -> None:
        res = run_script(str(self.path))
        if not res.passed:
            f = res.failure
            assert f is not None
            raise ScriptError(f.long(self._rel()))

    def _rel(self) -> str:
        try:
            return str(self.path.relative_to(Path.cwd()))
        except ValueError:
            return str(self.path)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, (ScriptError, ScriptFailure)):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"script {self.path.name}"


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> ScriptFile | None:
    if file_path.suffix == ".pkt":
        sf: ScriptFile = ScriptFile.from_parent(parent, path=file_path)
        return sf
    return None
