"""TunLink error messages that need no root: missing device, no permission, bad arguments."""

from __future__ import annotations

import os

import pytest

from pytcp.link import LinkError
from pytcp.link.tun import TunLink


def _raiser(exc: type[OSError]):  # type: ignore[no-untyped-def]
    real_open = os.open

    def fake_open(path, *a, **kw):  # type: ignore[no-untyped-def]
        if path == "/dev/net/tun":
            raise exc(2, "nope")
        return real_open(path, *a, **kw)

    return fake_open


def test_no_dev_net_tun(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "open", _raiser(FileNotFoundError))
    with pytest.raises(LinkError, match="no /dev/net/tun"):
        TunLink.open("pytcpx0")


def test_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "open", _raiser(PermissionError))
    with pytest.raises(LinkError, match="not root"):
        TunLink.open("pytcpx0")


@pytest.mark.parametrize("kw, needle", [
    ({"ifname": ""}, "invalid interface name"),
    ({"ifname": "a/b"}, "invalid interface name"),
    ({"ifname": "sixteen-chars-xx"}, "invalid interface name"),
    ({"host_addr": "10.77.0.0/24"}, "network or broadcast"),
    ({"host_addr": "10.77.0.255/24"}, "network or broadcast"),
    ({"host_addr": "224.0.0.1/24"}, "not a unicast"),
    ({"host_addr": "hello"}, "invalid address"),
    ({"mtu": 70000}, "invalid MTU"),
])
def test_bad_arguments_checked_before_touching_the_system(kw: dict, needle: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object, **k: object) -> int:
        raise AssertionError("must not open the device")

    monkeypatch.setattr(TunLink, "_open_dev", staticmethod(boom))
    with pytest.raises(LinkError, match=needle):
        TunLink.open(**kw)
