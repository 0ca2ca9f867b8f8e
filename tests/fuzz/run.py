"""Run one fuzz target under atheris (libFuzzer, coverage-guided; pytcp's bytecode is
instrumented): ``python tests/fuzz/run.py TARGET [libFuzzer flags] [CORPUS_DIR ...]``.

TARGET is one of ``wire``, ``stack``, ``script`` (see tests/fuzz/targets.py). Flags are
libFuzzer's, e.g. ``-max_total_time=60 -runs=100000 -artifact_prefix=DIR/``. A crash (an
invariant broken, an undocumented exception) stops the run with a non-zero status and a
``crash-*`` file holding the input; replay it with ``python tests/fuzz/run.py TARGET FILE``
and add it to tests/fuzz/test_fuzz_regressions.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main() -> None:
    import logging

    import atheris

    logging.disable(logging.CRITICAL)  # e.g. "possible SYN flooding": noise at this rate
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.stderr.write("usage: run.py TARGET [libFuzzer flags] [CORPUS_DIR ...]\n")
        sys.exit(2)
    name = sys.argv[1]
    with atheris.instrument_imports(include=["pytcp"]):
        from tests.fuzz.targets import TARGETS
    if name not in TARGETS:
        sys.stderr.write(f"unknown target {name!r}: one of {', '.join(TARGETS)}\n")
        sys.exit(2)
    atheris.Setup([sys.argv[0], *sys.argv[2:]], TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
