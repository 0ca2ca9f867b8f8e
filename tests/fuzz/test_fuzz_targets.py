"""A few seconds of coverage-guided fuzzing of each target in every test run (issue 7 item
7): atheris in a subprocess (libFuzzer ends its process), bounded in time and runs, starting
from the generated seed corpus. ``make fuzz`` runs the same targets for long
(tools/fuzz.py). Each seed also goes through its target in-process first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.seeds import SEEDS, write_seeds
from tests.fuzz.targets import TARGETS

REPO = Path(__file__).resolve().parents[2]
RUN = Path(__file__).with_name("run.py")
SECONDS = {"wire": 3, "stack": 6, "script": 3}  # of fuzzing in `make test`

try:
    import atheris  # noqa: F401
    HAVE_ATHERIS = True
except ImportError:  # pragma: no cover - `make install-test` installs it
    HAVE_ATHERIS = False


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_seeds_pass_their_target(target: str) -> None:
    seeds = SEEDS[target]()
    assert len(seeds) >= 20
    for data in seeds:
        TARGETS[target](data)


@pytest.mark.skipif(not HAVE_ATHERIS, reason="atheris is not installed (pip install atheris)")
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target_for_a_few_seconds(target: str, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_seeds(target, seeds)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep)
    seconds = SECONDS[target]
    proc = subprocess.run(
        [sys.executable, str(RUN), target, f"-max_total_time={seconds}", "-runs=2000000",
         "-rss_limit_mb=1024", "-timeout=20", f"-artifact_prefix={tmp_path}/",
         str(corpus), str(seeds)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    crashes = sorted(tmp_path.glob("crash-*")) + sorted(tmp_path.glob("timeout-*")) \
        + sorted(tmp_path.glob("oom-*"))
    tail = "\n".join(line for line in proc.stderr.splitlines()
                     if "SYN flooding" not in line)[-4000:]
    assert proc.returncode == 0 and not crashes, (
        f"fuzz target {target} found a problem (input kept in {crashes}; make it a "
        f"regression test in tests/fuzz/test_fuzz_regressions.py):\n{tail}")
    assert "Done " in proc.stderr  # libFuzzer ran to its bound
