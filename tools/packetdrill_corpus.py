#!/usr/bin/env python3
"""Run an upstream packetdrill corpus against pytcp and print a per-directory table.

    python3 tools/packetdrill_corpus.py DIR [--jobs N] [--set KEY=VALUE]... [--list] [--ipv6]
                                        [--markdown]

DIR is a checkout of google/packetdrill's ``gtests/net/tcp`` or of freebsd-net/tcp-testsuite
(neither is vendored: see docs/conformance.md, "Upstream corpora"). Every ``*.pkt`` under DIR
runs as written through ``pytcp.script.runner.run_script`` in its own worker process (bounded
by a per-script wall-clock limit) and is counted per directory as

- ``pass``;
- ``fail``: the stack did something else (the first FAIL line is printed);
- ``unsupported``: the script needs a call, option or feature pytcp does not have (named);
- ``parse``: a line the parser rejects (``pytcp script --check`` shows all of them);
- ``skip``: IPv6-only scripts (``--ip_version=ipv6`` or ``ipv6`` in the name); ``--ipv6``
  runs them anyway.

Prints one block per directory (``--list`` adds a line per passing script too), then a total,
and with ``--markdown`` the table docs/conformance.md carries. Exit status 0 (the table is the
result), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import signal
import sys
from collections import defaultdict
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PER_SCRIPT_SECONDS = 60


@dataclass
class Outcome:
    path: str
    kind: str  # pass | fail | unsupported | parse | skip
    detail: str = ""


def _is_ipv6_only(path: str) -> bool:
    if "ipv6" in os.path.basename(path):
        return True
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except OSError:
        return False
    return "--ip_version=ipv6" in head


def _alarm(_sig: int, _frame: object) -> None:
    raise TimeoutError(f"took longer than {PER_SCRIPT_SECONDS} s")


def run_one(path: str, overrides: dict[str, str]) -> Outcome:
    """Run one script (in a worker process) and classify the result."""
    from pytcp.script.parser import ScriptSyntaxError, parse_file
    from pytcp.script.runner import run_script

    try:
        script = parse_file(path)
    except ScriptSyntaxError as e:
        return Outcome(path, "parse", f"{e.line}: {e.msg}")
    except OSError as e:
        return Outcome(path, "parse", str(e))
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(PER_SCRIPT_SECONDS)
    try:
        res = run_script(script, overrides=overrides or None)
    except TimeoutError as e:
        return Outcome(path, "fail", f"0: {e}")
    finally:
        signal.alarm(0)
    if res.passed:
        return Outcome(path, "pass")
    f = res.failure
    assert f is not None
    if f.unsupported:
        return Outcome(path, "unsupported", f"{f.lineno}: {f.unsupported}")
    if f.reason.startswith("syntax error"):
        return Outcome(path, "parse", f"{f.lineno}: {f.reason}")
    return Outcome(path, "fail", f"{f.lineno}: {f.one_line()}")


def find_scripts(root: str) -> list[str]:
    out: list[str] = []
    for d, _dirs, files in os.walk(root):
        out.extend(os.path.join(d, f) for f in files if f.endswith(".pkt"))
    return sorted(out)


KINDS = ("pass", "fail", "unsupported", "parse", "skip")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="packetdrill_corpus.py",
                                 description="Run a packetdrill corpus against pytcp.")
    ap.add_argument("dir", help="corpus directory (e.g. .../gtests/net/tcp)")
    ap.add_argument("--jobs", "-j", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a script setting for every script (pytcp script --set)")
    ap.add_argument("--list", action="store_true", help="also list passing scripts")
    ap.add_argument("--ipv6", action="store_true", help="run IPv6-only scripts too")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.dir):
        print(f"packetdrill_corpus.py: {args.dir} is not a directory", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("packetdrill_corpus.py: --jobs must be at least 1", file=sys.stderr)
        return 2
    overrides: dict[str, str] = {}
    for kv in args.set:
        if "=" not in kv:
            print("packetdrill_corpus.py: --set needs KEY=VALUE", file=sys.stderr)
            return 2
        k, v = kv.split("=", 1)
        overrides[k] = v
    root = os.path.abspath(args.dir)
    scripts = find_scripts(root)
    results: list[Outcome] = []
    todo = []
    for p in scripts:
        if not args.ipv6 and _is_ipv6_only(p):
            results.append(Outcome(p, "skip", "IPv6"))
        else:
            todo.append(p)
    with cf.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futs = [pool.submit(run_one, p, overrides) for p in todo]
        for fut, p in zip(futs, todo):
            try:
                results.append(fut.result())
            except Exception as e:  # noqa: BLE001 - a crashed worker is one failed script
                results.append(Outcome(p, "fail", f"0: runner crashed: {e!r}"))
    by_dir: dict[str, list[Outcome]] = defaultdict(list)
    for r in results:
        rel = os.path.relpath(os.path.dirname(r.path), root)
        by_dir[rel].append(r)
    totals = dict.fromkeys(KINDS, 0)
    rows: list[tuple[str, dict[str, int]]] = []
    for d in sorted(by_dir):
        counts = dict.fromkeys(KINDS, 0)
        for r in by_dir[d]:
            counts[r.kind] += 1
            totals[r.kind] += 1
        rows.append((d, counts))
        if args.markdown:
            continue
        summary = ", ".join(f"{counts[k]} {k}" for k in KINDS if counts[k])
        print(f"{d}/: {summary}")
        for r in sorted(by_dir[d], key=lambda r: r.path):
            name = os.path.basename(r.path)
            if r.kind == "pass":
                if args.list:
                    print(f"  PASS {name}")
            elif r.kind != "skip":
                print(f"  {r.kind.upper()} {name}:{r.detail}")
    if args.markdown:
        print("| directory | scripts | pass | fail | unsupported | parse | skip (IPv6) |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for d, c in rows:
            print(f"| {d}/ | {sum(c.values())} | {c['pass']} | {c['fail']} | "
                  f"{c['unsupported']} | {c['parse']} | {c['skip']} |")
        print(f"| **total** | {sum(totals.values())} | {totals['pass']} | {totals['fail']} | "
              f"{totals['unsupported']} | {totals['parse']} | {totals['skip']} |")
    print(f"total: {len(results)} scripts: " + ", ".join(f"{totals[k]} {k}" for k in KINDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
