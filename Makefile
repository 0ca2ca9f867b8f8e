# pytcp: the two Quick start commands are `make up` and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
APT_PKGS_TEST := curl tshark wrk iputils-ping iproute2 nginx-light chromium
PYTEST_ARGS ?=
PYTCP_ARGS ?=

.PHONY: install install-test up test test-e2e test-fast bench fuzz clean

# Stamps: pip runs again only when what an install is built from changed since.
INSTALL_STAMP := .make-install.stamp
INSTALL_TEST_STAMP := .make-install-test.stamp
INSTALL_DEPS := pyproject.toml setup.py $(wildcard native/*)
# True when `import pytcp` from elsewhere finds this checkout (an editable install of it).
IS_THIS_PYTCP := (cd / && $(PYTHON) -c "import pathlib, sys, pytcp; sys.exit(pathlib.Path(pytcp.__file__).resolve().parent != pathlib.Path('$(CURDIR)/pytcp').resolve())") 2>/dev/null

# Install pytcp itself (builds the cffi extension when a compiler is present). Skipped when
# the installed pytcp is this checkout's and nothing it is built from changed (stamp).
install:
	@if [ -f $(INSTALL_STAMP) ] && [ -z "$$(find $(INSTALL_DEPS) -newer $(INSTALL_STAMP) 2>/dev/null)" ] \
	    && { [ -n "$$(ls pytcp/_native*.so 2>/dev/null)" ] || ! command -v gcc >/dev/null; } \
	    && $(IS_THIS_PYTCP); then \
	  echo "pytcp is installed and current (rm $(INSTALL_STAMP) to force pip)"; \
	else \
	  command -v gcc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc python3-dev; } || true; \
	  $(PIP) install -q -e . && touch $(INSTALL_STAMP); \
	fi

# Install test dependencies: Debian's real peers (curl, tshark, wrk, ping, ip, nginx for
# tools/bench.py and its smoke test, chromium for the dashboard's browser test) and PyPI's
# (playwright drives that chromium: its own browser download is never used).
install-test: install
	@missing=""; \
	for c in curl:curl tshark:tshark wrk:wrk ping:iputils-ping ip:iproute2 nginx:nginx-light chromium:chromium; do \
	  command -v $${c%%:*} >/dev/null || missing="$$missing $${c##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@if [ -f $(INSTALL_TEST_STAMP) ] && [ $(INSTALL_TEST_STAMP) -nt pyproject.toml ] \
	    && $(PYTHON) -c "import pytest, hypothesis, scapy, pytest_timeout, atheris, playwright" 2>/dev/null; then \
	  echo "test dependencies are installed and current"; \
	else \
	  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PIP) install -q -e '.[test]' && touch $(INSTALL_TEST_STAMP); \
	fi

# `python -m pytcp`, not the `pytcp` script: a fresh install's script may not be on PATH yet
# (pyenv needs a rehash). PYTCP_ARGS passes flags, e.g. make up PYTCP_ARGS="--echo 7".
up: install
	$(PYTHON) -m pytcp up $(PYTCP_ARGS)

test: install-test
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

# Everything but the end-to-end tests (no root needed).
test-fast: install-test
	$(PYTHON) -m pytest -q --ignore=tests/e2e $(PYTEST_ARGS)

# Only the end-to-end tests (kernel as the peer, network namespaces; root).
test-e2e: install-test
	$(PYTHON) -m pytest -q tests/e2e $(PYTEST_ARGS)

# Long coverage-guided fuzzing runs (atheris): FUZZ_SECONDS per target, corpus in .fuzz/.
# `make test` runs each target for a few seconds (tests/fuzz).
FUZZ_SECONDS ?= 600
fuzz: install-test
	$(PYTHON) tools/fuzz.py --seconds $(FUZZ_SECONDS)

bench: install-test
	$(PYTHON) tools/bench_checksum.py
	$(PYTHON) tools/bench.py

clean:
	rm -rf build *.egg-info pytcp/_native*.so .pytest_cache .hypothesis .fuzz $(INSTALL_STAMP) $(INSTALL_TEST_STAMP)
