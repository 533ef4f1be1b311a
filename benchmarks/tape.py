"""The floor of W1: a minimal reverse-mode tape with raw NumPy rules.

No nesting, no pytrees, no dtype or shape checks, no memory planning: one ``Var`` per value, a
global list of ``(output, inputs, vjp closure)`` records, and a reverse sweep. It does the
least work a reverse-mode system can do per operation in Python, so diffprog's eager time on
W1 divided by this one's is the price of everything diffprog does beyond it (issue 17: at most
1.25x). Only the operations of W1's chain are defined.

>>> import numpy as np
>>> float(grad(lambda x: sum(sin(x) * x))(np.zeros(1))[0])
0.0
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

_tape: list = []


class Var:
    """A value on the tape; ``g`` accumulates its cotangent during the sweep."""

    __slots__ = ("v", "g")
    __array_priority__ = 1000

    def __init__(self, v):
        self.v = v
        self.g = None

    def __mul__(self, o):
        if type(o) is Var:
            a, b = self.v, o.v
            return _rec(a * b, (self, o), lambda g: (g * b, g * a))
        return _rec(self.v * o, (self,), lambda g: (g * o,))

    __rmul__ = __mul__

    def __add__(self, o):
        if type(o) is Var:
            return _rec(self.v + o.v, (self, o), lambda g: (g, g))
        return _rec(self.v + o, (self,), lambda g: (g,))

    __radd__ = __add__

    def __neg__(self):
        return _rec(-self.v, (self,), lambda g: (-g,))


def _rec(value, inputs, vjp):
    out = Var(value)
    _tape.append((out, inputs, vjp))
    return out


def sin(x):
    v = x.v
    return _rec(np.sin(v), (x,), lambda g: (g * np.cos(v),))


def tanh(x):
    y = np.tanh(x.v)
    return _rec(y, (x,), lambda g: (g * (1.0 - y * y),))


def exp(x):
    y = np.exp(x.v)
    return _rec(y, (x,), lambda g: (g * y,))


def sum(x):  # the backend namespace's name for a full reduction
    v = x.v
    return _rec(v.sum(), (x,), lambda g: (np.broadcast_to(g, v.shape),))


def grad(f):
    """The gradient of a scalar function of one array."""
    def grad_f(x):
        _tape.clear()
        xv = Var(x)
        out = f(xv)
        out.g = np.ones_like(out.v)
        for node, inputs, vjp in reversed(_tape):
            if node.g is None:
                continue
            for var, g in zip(inputs, vjp(node.g)):
                var.g = g if var.g is None else var.g + g
        _tape.clear()
        return xv.g if xv.g is not None else np.zeros_like(x)
    return grad_f


B = SimpleNamespace(sin=sin, tanh=tanh, exp=exp, sum=sum)
