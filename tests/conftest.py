"""Root conftest: registers the packet-script plugin so ``tests/scripts/**/*.pkt`` are tests."""

pytest_plugins = ["pytcp.script.plugin"]
