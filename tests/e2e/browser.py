"""A real browser for the end-to-end tests: Debian's chromium driven by Playwright in the
test's namespace (``playwright install`` is never run; nothing is downloaded at run time).

``browser_problem()`` says why a browser test must be skipped (None when it can run);
``run_browser(netns, script, args, tmp_path)`` runs ``script`` — Python that gets
``page`` (a 1000x900 page of a headless chromium, ``requests`` collecting every URL it asks
for), ``args`` (the strings given) and ``out`` (a dict it fills) — in a subprocess inside the
namespace and returns ``out`` with ``requests`` added, parsed from its last stdout line.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

from tools.netns import Netns, pytcp_env

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

_RUNNER = textwrap.dedent("""
    import json, sys
    from playwright.sync_api import sync_playwright
    chromium, body, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    out = {"requests": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.on("request", lambda r: out["requests"].append(r.url))
        try:
            exec(compile(body, "<browser script>", "exec"),
                 {"page": page, "args": args, "out": out})
        finally:
            browser.close()
    print(json.dumps(out))
""")


def browser_problem() -> str | None:
    if not os.path.exists(CHROMIUM):
        return "no chromium (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "no playwright (pip install playwright)"
    return None


def run_browser(netns: Netns, script: str, args: list[str], tmp_path: Path,
                timeout: float = 90.0) -> dict[str, Any]:
    env = pytcp_env({"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1", "HOME": str(tmp_path)})
    res = netns.run([sys.executable, "-c", _RUNNER, CHROMIUM, textwrap.dedent(script), *args],
                    timeout=timeout, env=env)
    assert res.returncode == 0, res.stderr.decode()[-3000:]
    out: dict[str, Any] = json.loads(res.stdout.decode().splitlines()[-1])
    return out
