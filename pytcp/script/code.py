"""packetdrill's ``%{ ... }%`` blocks, evaluated by a restricted evaluator (never ``exec``).

In packetdrill a code block is Python run against the TCP_INFO of the socket under test,
taken when the block's time comes (``assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd``). pytcp
parses the block with :mod:`ast` and evaluates only: ``assert``, assignments and augmented
assignments to plain names, ``print(...)`` (ignored), and expressions over integer/string
constants, names, comparisons (chained), ``and``/``or``/``not``, arithmetic and bitwise
operators and tuples. Names are the ``tcpi_*`` fields of :func:`tcp_info_fields`, Linux's
constants (``TCP_CA_Open``, ``TCP_ESTABLISHED``, ``TCPI_OPT_SACK`` ...) and the variables earlier
blocks of the same script assigned (one namespace per script, as packetdrill's one Python
file). Anything else is :class:`CodeUnsupported`; a false assertion is :class:`CodeFailure`.
"""

from __future__ import annotations

import ast
import operator
import textwrap
from collections.abc import Callable
from typing import Any

# Linux's include/net/tcp.h / uapi tcp.h values, as packetdrill's Python sees them.
CONSTANTS: dict[str, int] = {
    "TCP_CA_Open": 0, "TCP_CA_Disorder": 1, "TCP_CA_CWR": 2, "TCP_CA_Recovery": 3,
    "TCP_CA_Loss": 4,
    "TCP_ESTABLISHED": 1, "TCP_SYN_SENT": 2, "TCP_SYN_RECV": 3, "TCP_FIN_WAIT1": 4,
    "TCP_FIN_WAIT2": 5, "TCP_TIME_WAIT": 6, "TCP_CLOSE": 7, "TCP_CLOSE_WAIT": 8,
    "TCP_LAST_ACK": 9, "TCP_LISTEN": 10, "TCP_CLOSING": 11,
    "TCPI_OPT_TIMESTAMPS": 1, "TCPI_OPT_SACK": 2, "TCPI_OPT_WSCALE": 4, "TCPI_OPT_ECN": 8,
    "TCPI_OPT_ECN_SEEN": 16, "TCPI_OPT_SYN_DATA": 32,
}

MAX_CODE_CHARS = 16384  # a longer block is refused (bounded work per block)


class CodeFailure(AssertionError):
    """An ``assert`` in a code block was false; the message names the expression."""


class CodeUnsupported(Exception):
    """The block uses a name or construct the restricted evaluator does not have."""


_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv, ast.Div: operator.truediv, ast.Mod: operator.mod,
    ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.BitXor: operator.xor,
    ast.LShift: operator.lshift, ast.RShift: operator.rshift,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}


class CodeEvaluator:
    """One script's namespace; :meth:`run` evaluates one block against TCP_INFO fields."""

    def __init__(self) -> None:
        self.variables: dict[str, Any] = {}
        self.fields: dict[str, int] = {}

    def run(self, code: str, fields: dict[str, int]) -> None:
        if len(code) > MAX_CODE_CHARS:
            raise CodeUnsupported(f"code block longer than {MAX_CODE_CHARS} characters")
        self.fields = fields
        text = textwrap.dedent(code).strip()
        if text.endswith("\\"):
            # A line continuation into the block's end: packetdrill writes each block to a
            # file followed by a newline, which the continuation joins (an empty line).
            text = text[:-1].rstrip()
        try:
            tree = ast.parse(text)
        except SyntaxError:
            try:  # packetdrill's blocks are often indented unevenly
                tree = ast.parse("\n".join(ln.strip() for ln in text.splitlines()))
            except SyntaxError as e:
                raise CodeUnsupported(f"not Python: {e.msg}") from None
        for stmt in tree.body:
            self._stmt(stmt)

    def _stmt(self, s: ast.stmt) -> None:
        if isinstance(s, ast.Assert):
            if not self._eval(s.test):
                raise CodeFailure(f"assert {ast.unparse(s.test)} failed "
                                  f"({self._describe(s.test)})")
        elif isinstance(s, ast.Assign) and all(isinstance(t, ast.Name) for t in s.targets):
            v = self._eval(s.value)
            for t in s.targets:
                assert isinstance(t, ast.Name)
                self.variables[t.id] = v
        elif isinstance(s, ast.AugAssign) and isinstance(s.target, ast.Name):
            op = _BINOPS.get(type(s.op))
            if op is None:
                raise CodeUnsupported(f"operator in {ast.unparse(s)!r}")
            self.variables[s.target.id] = op(self._name(s.target.id), self._eval(s.value))
        elif isinstance(s, ast.Expr):
            v = s.value
            if (isinstance(v, ast.Call) and isinstance(v.func, ast.Name)
                    and v.func.id == "print"):
                return  # packetdrill prints to its log; nothing to check
            self._eval(v)
        elif isinstance(s, ast.Pass):
            return
        else:
            raise CodeUnsupported(f"statement {ast.unparse(s)[:40]!r}")

    def _describe(self, e: ast.expr) -> str:
        names = sorted({n.id for n in ast.walk(e) if isinstance(n, ast.Name)})
        parts = []
        for n in names:
            try:
                parts.append(f"{n}={self._name(n)}")
            except CodeUnsupported:
                pass
        return ", ".join(parts)

    def _name(self, name: str) -> Any:
        if name in self.variables:
            return self.variables[name]
        if name in self.fields:
            return self.fields[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name.startswith("tcpi_"):
            raise CodeUnsupported(f"TCP_INFO field {name}")
        raise CodeUnsupported(f"name {name}")

    def _eval(self, e: ast.expr) -> Any:
        if isinstance(e, ast.Constant) and isinstance(e.value, (int, float, str)):
            return e.value
        if isinstance(e, ast.Name):
            return self._name(e.id)
        if isinstance(e, ast.Tuple):
            return tuple(self._eval(x) for x in e.elts)
        if isinstance(e, ast.UnaryOp):
            v = self._eval(e.operand)
            if isinstance(e.op, ast.Not):
                return not v
            if isinstance(e.op, ast.USub):
                return -v
            if isinstance(e.op, ast.UAdd):
                return +v
            if isinstance(e.op, ast.Invert):
                return ~v
        if isinstance(e, ast.BinOp) and type(e.op) in _BINOPS:
            return _BINOPS[type(e.op)](self._eval(e.left), self._eval(e.right))
        if isinstance(e, ast.BoolOp):
            if isinstance(e.op, ast.And):
                result: Any = True
                for x in e.values:
                    result = self._eval(x)
                    if not result:
                        return result
                return result
            result = False
            for x in e.values:
                result = self._eval(x)
                if result:
                    return result
            return result
        if isinstance(e, ast.Compare) and all(type(o) in _CMPOPS for o in e.ops):
            left = self._eval(e.left)
            for op, comp in zip(e.ops, e.comparators):
                right = self._eval(comp)
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        raise CodeUnsupported(f"expression {ast.unparse(e)[:40]!r}")
