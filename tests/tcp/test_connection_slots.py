"""Connection uses __slots__ (memory per connection, issue 7): every attribute the engine's
modules assign on ``self`` must be a slot of Connection or of one of its mixins, else the
assignment raises AttributeError at run time. This test names the missing ones."""

from __future__ import annotations

import ast
from pathlib import Path

import pytcp.tcp.connection as connection_module
from pytcp.tcp.config import TcpConfig
from pytcp.tcp.connection import Connection

MODULES = ("connection.py", "output.py", "recovery.py")


def assigned_attributes(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for t in targets:
            for sub in ast.walk(t):
                if (isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name)
                        and sub.value.id == "self"):
                    names.add(sub.attr)
    return names


def test_every_assigned_attribute_is_a_slot() -> None:
    here = Path(connection_module.__file__).parent
    slots: set[str] = set()
    for cls in Connection.__mro__:
        slots |= set(getattr(cls, "__slots__", ()))
    for name in MODULES:
        missing = assigned_attributes(here / name) - slots
        assert not missing, f"add to a __slots__ (see Connection): {sorted(missing)} ({name})"


def test_a_connection_has_no_instance_dict() -> None:
    c = Connection(TcpConfig(), iss=1, now=0.0)
    assert not hasattr(c, "__dict__")
