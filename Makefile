# pytcp: the two Quick start commands are `make up` and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
APT_PKGS_TEST := curl tshark wrk iputils-ping iproute2
PYTEST_ARGS ?=
PYTCP_ARGS ?=

.PHONY: install install-test up test test-e2e test-fast bench clean

# Install pytcp itself (builds the cffi extension when a compiler is present).
install:
	@command -v gcc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc python3-dev; } || true
	$(PIP) install -q -e .

# Install test dependencies: Debian's real peers (curl, tshark, wrk, ping, ip) and PyPI's.
install-test: install
	@missing=""; \
	for c in curl:curl tshark:tshark wrk:wrk ping:iputils-ping ip:iproute2; do \
	  command -v $${c%%:*} >/dev/null || missing="$$missing $${c##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	$(PIP) install -q -e '.[test]'

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

bench: install-test
	$(PYTHON) tools/bench_checksum.py
	$(PYTHON) tools/bench.py

clean:
	rm -rf build *.egg-info pytcp/_native*.so .pytest_cache .hypothesis
