"""Linear primitives: declared by their transposes (``linear=``), jvp and vjp derived.

For every linear primitive the derived rules agree, <u, J v> = <J^T u, v> to 1e-12, and the
jvp is the primitive itself applied to the tangent (the linear map, an oracle independent of
the rules). The reverse trace keeps no operand of a linear primitive beyond what its transposes
read. ``Primitive`` rejects option combinations that would fail later, naming the primitive.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog import prims as P
from diffprog.core import SHAPE_ONLY, Primitive, ShapeOnly, Tracer, primitives
from diffprog.prims.linalg import canonical_subscripts
from diffprog.testing import check_grads

LINEAR = {"neg", "add", "sub", "mul", "real", "imag", "conj", "convert_element_type", "reshape",
          "broadcast_to", "reduce_sum", "transpose", "concatenate", "split", "cumsum", "getitem",
          "scatter_add", "permute_along_axis", "matmul", "einsum", "fft", "rfft", "irfft"}
PER_OPERAND = {"mul": (0, 1), "matmul": (0, 1), "permute_along_axis": (0,)}


def _randn(rng, shape, dtype=np.float64):
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return np.asarray(x).astype(dtype)


def _like(rng, x):
    return _randn(rng, np.shape(x), np.result_type(x))


def _einsum(spec):
    inputs, output = spec.split("->")
    return canonical_subscripts(tuple(inputs.split(",")), output)


# (id, primitive name, args maker(rng), params, differentiated positions)
def _cases():
    c = np.complex128
    idx_rep = (np.array([0, 2, 0, 1]), (None, None, None))  # repeated rows
    perm = np.argsort(np.random.default_rng(1).standard_normal((3, 4)), axis=1)
    yield "neg", "neg", lambda r: (_randn(r, (2, 3)),), {}, (0,)
    yield "add", "add", lambda r: (_randn(r, (2, 3)), _randn(r, (2, 3))), {}, (0, 1)
    yield "add-first", "add", lambda r: (_randn(r, (2, 3)), _randn(r, (2, 3))), {}, (0,)
    yield "sub", "sub", lambda r: (_randn(r, (2, 3)), _randn(r, (2, 3))), {}, (0, 1)
    yield "sub-second", "sub", lambda r: (_randn(r, (4,)), _randn(r, (4,))), {}, (1,)
    yield "sub-scalar", "sub", lambda r: (1.5, _randn(r, (4,))), {}, (1,)
    yield "mul", "mul", lambda r: (_randn(r, (2, 3)), _randn(r, (2, 3))), {}, (0, 1)
    yield "mul-const", "mul", lambda r: (_randn(r, (2, 3)), 2.5), {}, (0,)
    yield "real", "real", lambda r: (_randn(r, (3,), c),), {}, (0,)
    yield "imag", "imag", lambda r: (_randn(r, (3,), c),), {}, (0,)
    yield "conj", "conj", lambda r: (_randn(r, (2, 2), c),), {}, (0,)
    yield ("cast-to-complex", "convert_element_type", lambda r: (_randn(r, (3,)),),
           {"dtype": np.dtype(c)}, (0,))
    yield ("cast-to-real", "convert_element_type", lambda r: (_randn(r, (3,), c),),
           {"dtype": np.dtype(np.float64)}, (0,))
    yield "reshape", "reshape", lambda r: (_randn(r, (2, 3)),), {"shape": (3, 1, 2)}, (0,)
    yield ("broadcast", "broadcast_to", lambda r: (_randn(r, (3, 1)),), {"shape": (2, 3, 4)},
           (0,))
    yield "broadcast-0d", "broadcast_to", lambda r: (_randn(r, ()),), {"shape": (2, 2)}, (0,)
    yield ("sum", "reduce_sum", lambda r: (_randn(r, (2, 3, 4)),),
           {"axis": (0, 2), "keepdims": False}, (0,))
    yield ("sum-keepdims", "reduce_sum", lambda r: (_randn(r, (2, 3, 4)),),
           {"axis": (1,), "keepdims": True}, (0,))
    yield "transpose", "transpose", lambda r: (_randn(r, (2, 3, 4)),), {"perm": (2, 0, 1)}, (0,)
    yield "cumsum", "cumsum", lambda r: (_randn(r, (3, 4)),), {"axis": 1, "reverse": False}, (0,)
    yield ("cumsum-reverse", "cumsum", lambda r: (_randn(r, (3, 4)),),
           {"axis": 0, "reverse": True}, (0,))
    yield ("concatenate", "concatenate",
           lambda r: (_randn(r, (2, 1)), _randn(r, (2, 3)), _randn(r, (2, 2))), {"axis": 1},
           (0, 1, 2))
    yield ("concatenate-some", "concatenate",
           lambda r: (_randn(r, (1, 2)), _randn(r, (3, 2)), _randn(r, (2, 2))), {"axis": 0},
           (0, 2))
    yield ("split", "split", lambda r: (_randn(r, (5, 2)),), {"indices": (1, 3), "axis": 0},
           (0,))
    yield ("getitem-slice", "getitem", lambda r: (_randn(r, (4, 3)),),
           {"idx": ((1, None, 2), 0)}, (0,))
    yield "getitem-repeat", "getitem", lambda r: (_randn(r, (3, 2)),), {"idx": idx_rep}, (0,)
    yield ("scatter-add", "scatter_add", lambda r: (_randn(r, (4, 2)),),
           {"shape": (3, 2), "idx": idx_rep}, (0,))
    yield ("permute", "permute_along_axis", lambda r: (_randn(r, (3, 4)), perm), {"axis": 1},
           (0,))
    yield "matmul", "matmul", lambda r: (_randn(r, (2, 3)), _randn(r, (3, 4))), {}, (0, 1)
    yield ("matmul-batch", "matmul", lambda r: (_randn(r, (5, 2, 3)), _randn(r, (5, 3, 4))), {},
           (0, 1))
    yield ("matmul-const", "matmul", lambda r: (_randn(r, (2, 3)), _randn(r, (3, 4))), {},
           (1,))
    # the FFTs, every norm; complex to complex (also of a real operand), real to half-spectrum
    # and back (even and odd lengths: the Nyquist bin only exists for even ones)
    for norm in ("backward", "ortho", "forward"):
        yield (f"fft-{norm}", "fft", lambda r: (_randn(r, (3, 4), c),),
               {"axes": (1,), "inverse": False, "norm": norm}, (0,))
        yield (f"ifft2-{norm}", "fft", lambda r: (_randn(r, (3, 4), c),),
               {"axes": (0, 1), "inverse": True, "norm": norm}, (0,))
        yield (f"rfft-{norm}", "rfft", lambda r: (_randn(r, (6, 2)),),
               {"axis": 0, "norm": norm}, (0,))
        yield (f"rfft-odd-{norm}", "rfft", lambda r: (_randn(r, (2, 5)),),
               {"axis": 1, "norm": norm}, (0,))
        yield (f"irfft-{norm}", "irfft", lambda r: (_randn(r, (2, 4), c),),
               {"axis": 1, "n": 6, "norm": norm}, (0,))
        yield (f"irfft-odd-{norm}", "irfft", lambda r: (_randn(r, (4, 3), c),),
               {"axis": 0, "n": 7, "norm": norm}, (0,))
    yield ("fft-of-real", "fft", lambda r: (_randn(r, (5,)),),
           {"axes": (0,), "inverse": False, "norm": "backward"}, (0,))
    yield ("fft-complex64", "fft", lambda r: (_randn(r, (2, 3), np.complex64),),
           {"axes": (0, 1), "inverse": True, "norm": "ortho"}, (0,))
    for spec, shapes in [("ij,jk->ik", [(2, 3), (3, 4)]), ("ii->i", [(3, 3)]),
                         ("ij->", [(2, 3)]), ("i,i->", [(4,), (4,)]),
                         ("ijk,kl,lm->ijm", [(2, 3, 4), (4, 2), (2, 3)]),
                         ("ij,j->ij", [(2, 3), (3,)]), ("iij,j->i", [(2, 2, 3), (3,)])]:
        yield (f"einsum-{spec}", "einsum",
               lambda r, shapes=shapes: tuple(_randn(r, s) for s in shapes),
               {"subscripts": _einsum(spec)}, tuple(range(len(shapes))))


CASES = list(_cases())


def _inner(a, b) -> float:
    """The real pairing Re(sum(a * b)) (no conjugation), over tuples for several outputs."""
    if isinstance(a, tuple):
        return sum(_inner(x, y) for x, y in zip(a, b))
    return float(np.real(np.sum(np.asarray(a) * np.asarray(b))))


def _applied(name, args, params, diff, tangents):
    """The linear map J v computed from the primitive alone: for a jointly linear primitive
    the primitive of the tangents (zeros elsewhere), for a multilinear one the sum over the
    differentiated operands of the primitive with that operand's tangent in its place."""
    prim = primitives[name]
    if name in PER_OPERAND or name == "einsum":
        total = None
        for k, t in zip(diff, tangents):
            ops = list(args)
            ops[k] = t
            part = prim.impl(*ops, **params)
            total = part if total is None else total + part
        return total
    ops = [np.zeros_like(np.asarray(a)) for a in args]
    for k, t in zip(diff, tangents):
        ops[k] = t
    return prim.impl(*ops, **params)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_derived_jvp_and_vjp_agree(case, rng):
    _, name, make, params, diff = case
    prim = primitives[name]
    args = make(rng)

    def f(*xs):
        ops = list(args)
        for k, x in zip(diff, xs):
            ops[k] = x
        return prim(*ops, **params)

    primals = tuple(args[k] for k in diff)
    v = tuple(_like(rng, x) for x in primals)
    out, jv = dp.jvp(f, primals, v)
    out2, vjp_fn = dp.vjp(f, *primals)
    u = tuple(_like(rng, o) for o in out) if isinstance(out, tuple) else _like(rng, out)
    jtu = vjp_fn(u)
    lhs, rhs = _inner(u, jv), _inner(jtu, v)
    single = any(np.finfo(np.result_type(x)).bits <= 32 for x in primals)  # complex64 cases
    assert abs(lhs - rhs) <= (1e-5 if single else 1e-12) * max(1.0, abs(lhs)), (lhs, rhs)
    expected = _applied(name, args, params, diff, v)
    if isinstance(out, tuple):
        for a, b in zip(jv, expected):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
    else:
        np.testing.assert_allclose(jv, expected, rtol=1e-13, atol=1e-13)
        assert np.result_type(jv) == np.result_type(out)
    for g, x in zip(jtu, primals):  # cotangents have their primal's shape and dtype
        assert np.shape(g) == np.shape(x)
        assert np.result_type(g) == np.result_type(x)


def test_every_listed_linear_primitive_is_declared_linear():
    declared = {name for name, p in primitives.items() if p.linear is not False}
    assert LINEAR <= declared, LINEAR - declared
    for name in LINEAR:
        p = primitives[name]
        assert p.transpose is not None
        assert p.vjp_per_arg and not p.jvp_per_arg  # derived: one jvp, per-argument vjps
        if name in PER_OPERAND:
            assert p.linear == PER_OPERAND[name], name


def test_einsum_has_one_transpose_rule_not_one_per_position():
    assert callable(P.einsum.transpose) and not isinstance(P.einsum.transpose, tuple)
    assert not isinstance(P.einsum.jvp, tuple) and not isinstance(P.einsum.vjp, tuple)
    # positions are bound on demand, once
    assert P.einsum.vjp[3] is P.einsum.vjp[3]


def test_derived_vjp_reads():
    # a transpose reads the other operands of a multilinear primitive, never its own or the out
    assert P.mul.vjp_reads == ((1,), (0,))
    assert P.matmul.vjp_reads == ((1,), (0,))
    assert P.permute_along_axis.vjp_reads == ((1,), ())
    assert P.reshape.vjp_reads == ((),)
    assert P.add.vjp_reads == ((), ())
    # mask 0b01: only x differentiated -> x kept as its shape, y (a constant) kept, no out
    assert P.matmul.keep_plan[1] == ((SHAPE_ONLY, True), False)
    assert P.matmul.keep_plan[3] == (None, False)
    assert P.reshape.keep_plan[1] == ((SHAPE_ONLY,), False)
    # transpose_reads_shapes=False: add's transposes return the cotangent, nothing is kept
    assert P.add.keep_plan[3] == ((False, False), False)
    # variadic: planned per mask, constants after the last differentiated operand kept
    keep, keep_out = P.einsum.keep_plan[0b010]
    assert list(zip(range(4), keep)) == [(0, True), (1, SHAPE_ONLY), (2, True), (3, True)]
    assert keep_out is False
    assert P.einsum.keep_plan[0b011] == (None, False)
    keep, keep_out = P.concatenate.keep_plan[0b101]
    assert list(zip(range(4), keep)) == [(0, SHAPE_ONLY), (1, True), (2, SHAPE_ONLY), (3, True)]
    # several outputs: always kept (the backward sweep needs their number and shapes)
    assert P.split.keep_plan[1] == ((SHAPE_ONLY,), True)


class Probe:
    def __init__(self):
        self.refs = []

    def watch(self, *values):
        for v in values:
            while isinstance(v, Tracer):
                v = v.primal
            self.refs.append(weakref.ref(v))

    def alive(self) -> int:
        gc.collect()
        return sum(r() is not None for r in self.refs)


@pytest.mark.slow
def test_reverse_trace_keeps_no_operand_of_a_linear_chain():
    probe = Probe()
    x = np.linspace(0.1, 1.0, 12)

    def f(x):
        s = dnp.sin(x)
        m = s * 2.0
        t = dnp.transpose(dnp.reshape(m, (3, 4)))
        r = dnp.reshape(t, (2, 6))
        c = dnp.cumsum(r[:, 1:], axis=1)
        probe.watch(s, m, t, r, c)
        return dnp.sum(c)

    out, vjp_fn = dp.vjp(f, x)
    assert probe.alive() == 0  # only shapes were kept by mul, transpose, reshape, ...
    (g,) = vjp_fn(1.0)
    np.testing.assert_allclose(g, dp.grad(f)(x), rtol=1e-14)
    r_weights = np.zeros((2, 6))
    r_weights[:, 1:] = np.arange(5, 0, -1)  # a cumsum entry counts in the sums after it
    weights = r_weights.reshape(4, 3).T.reshape(12)
    np.testing.assert_allclose(g, 2.0 * np.cos(x) * weights, rtol=1e-13)


@pytest.mark.slow
def test_reverse_trace_keeps_what_a_transpose_reads():
    probe = Probe()
    a = np.linspace(0.1, 1.0, 6).reshape(2, 3)
    b = np.linspace(-1.0, 1.0, 12).reshape(3, 4)

    def f(a, b):
        sa, cb = dnp.sin(a), dnp.cos(b)
        probe.watch(sa, cb)
        return dnp.sum(dnp.einsum("ij,jk->ik", sa, cb))

    _, vjp_fn = dp.vjp(f, a, b)
    assert probe.alive() == 2  # each operand's transpose reads the other
    ga, gb = vjp_fn(1.0)
    np.testing.assert_allclose(ga, np.cos(a) * np.cos(b).sum(axis=1), rtol=1e-13)
    np.testing.assert_allclose(gb, -np.sin(b) * np.sin(a).sum(axis=0)[:, None], rtol=1e-13)

    probe.refs.clear()
    _, vjp_fn = dp.vjp(lambda a: f(a, b), a)  # cos(b) is a constant now: sin(a) is not read
    assert probe.alive() == 1
    np.testing.assert_allclose(vjp_fn(1.0)[0], ga, rtol=1e-14)


# -- check_grads to order 2, through diffprog.numpy ---------------------------------------------

def _shapes_fn(x, y):
    # x (3, 1), y (4,): broadcasting, reshape, transpose, concatenate, split, cumsum, sums
    z = x * y + x - y
    w = dnp.concatenate([dnp.transpose(z), -dnp.reshape(x, (1, 3))], axis=0)
    a, b, c = dnp.split(w, [2, 4], axis=0)
    return (dnp.sum(dnp.cumsum(a * b, axis=1)) + dnp.sum(a[0] * a[0])
            + dnp.sum(dnp.broadcast_to(c, (2, 1, 3)) * y[:3]))


def _index_fn(x, y):
    rows = np.array([0, 2, 0])
    g = x[rows] * x[1:, ::-1][0]
    return dnp.sum(g * g) + dnp.sum(dnp.at(x)[rows].add(y * y) ** 2)


def _complex_fn(x):
    z = x * (1.0 + 2.0j)
    return dnp.sum(dnp.real(dnp.conj(z) * z * x) + dnp.imag(z * z * (0.5 - 1.0j)))


def _matmul_fn(a, b, v):
    return dnp.sum((a @ b) ** 2) + dnp.sum(v @ b[0] * dnp.sin(v @ b[1]))


def _einsum_fn(a, b, c):
    return (dnp.einsum("ij,jk,kl->il", a, b, c).sum() ** 2
            + dnp.einsum("ii->i", a @ a.T).sum() * dnp.einsum("ij,ij->", b, b)
            + (dnp.einsum("ij->j", c) ** 3).sum()
            + dnp.einsum("ijk,k->ij", dnp.reshape(a, (2, 3, 1)) * c[0], c[1]).sum())


def _permute_fn(x):
    return dnp.sum(dnp.sort(x, axis=1) * np.arange(4.0))


def _fft_fn(x, z):
    # a real loss through every FFT primitive (and dnp.fft's padding and truncation)
    spec = dnp.fft.rfft(x, n=6) * dnp.fft.fft2(z)[0, :4]
    back = dnp.fft.irfft(spec, n=7, norm="ortho") + dnp.real(dnp.fft.ifft(z[1], n=7))
    return dnp.sum(back ** 2) + dnp.sum(dnp.abs(dnp.fft.fftn(z, norm="forward")) ** 2)


GRAD_CASES = [
    ("shapes", _shapes_fn, lambda r: (_randn(r, (3, 1)), _randn(r, (4,)))),
    ("index", _index_fn, lambda r: (_randn(r, (3, 2)), _randn(r, (3, 2)))),
    ("complex", _complex_fn, lambda r: (_randn(r, (4,)),)),
    ("matmul", _matmul_fn, lambda r: (_randn(r, (2, 3, 4)), _randn(r, (2, 4, 5)),
                                      _randn(r, (4,)))),
    ("einsum", _einsum_fn, lambda r: (_randn(r, (2, 3)), _randn(r, (3, 4)), _randn(r, (4, 4)))),
    ("permute", _permute_fn, lambda r: (_randn(r, (3, 4)),)),
    ("fft", _fft_fn, lambda r: (_randn(r, (5,)), _randn(r, (3, 4), np.complex128))),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_check_grads_order_2(case, rng):
    _, f, make = case
    check_grads(f, make(rng), order=2, modes=("fwd", "rev"))


def test_jvp_of_linear_primitives_with_absent_tangents():
    x, y = np.arange(3.0), np.ones(3)
    t = np.array([1.0, -2.0, 0.5])
    # x - y along y only: -t (the zero for x adds nothing)
    np.testing.assert_array_equal(dp.jvp(lambda y: x - y, (y,), (t,))[1], -t)
    # x + y along x only: the tangent itself (add's identity), no addition
    out = dp.jvp(lambda x: P.add(x, y), (x,), (t,))[1]
    np.testing.assert_array_equal(out, t)
    # a constant block of concatenate has a zero tangent, in the output's layout
    out = dp.jvp(lambda x: dnp.concatenate([y, x]), (x,), (t,))[1]
    np.testing.assert_array_equal(out, np.concatenate([np.zeros(3), t]))
    # float32 stays float32 next to a Python scalar
    x32 = np.ones(2, np.float32)
    assert dp.jvp(lambda x: 1.0 - x, (x32,), (x32,))[1].dtype == np.float32


def test_hessian_through_linear_primitives():
    # f = (sum_i x_i)^2 * c + x @ A x with A symmetric: Hessian 2c 11^T + 2A
    a = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, -1.0], [0.0, -1.0, 3.0]])

    def f(x):
        s = dnp.sum(dnp.reshape(dnp.broadcast_to(x, (2, 3))[0], (3, 1)))
        return s * s * 1.5 + x @ (a @ x)

    np.testing.assert_allclose(dp.hessian(f)(np.array([0.3, -0.2, 0.7])),
                               3.0 * np.ones((3, 3)) + 2 * a, rtol=1e-13)


# -- declarations that are rejected ---------------------------------------------------------------

def _ident(*args, **params):
    return args[0]


def _rule(*args, **params):
    return args[0]


@pytest.mark.parametrize("kwargs, match", [
    ({"linear": True, "transpose": (_rule,), "jvp": (_rule,)}, "derived from its transpose"),
    ({"linear": True, "transpose": (_rule,), "vjp": (_rule,)}, "derived from its transpose"),
    ({"linear": True}, "needs transpose="),
    ({"transpose": (_rule,)}, "only used with linear"),
    ({"linear": True, "transpose": (_rule,), "vjp_reads": ((),)}, "vjp_reads are derived"),
    ({"linear": (0, 0), "transpose": (_rule,)}, "distinct argument positions"),
    ({"linear": (-1,), "transpose": (_rule,)}, "distinct argument positions"),
    ({"linear": (), "transpose": (_rule,)}, "non-empty tuple"),
    ({"linear": (1,), "transpose": (None,)}, "transpose has rules for 1"),
    ({"linear": (0,), "transpose": (_rule, _rule)}, "not among the linear positions"),
    ({"linear": True, "transpose": (_rule, None)}, "must be callable"),
    ({"linear": True, "transpose": "x"}, "transpose must be a tuple"),
    ({"jvp": (_rule, _rule), "vjp": (_rule,)}, "the jvp has 2 per-argument rules"),
    ({"jvp": (_rule, _rule), "vjp_reads": ((),)}, "describes 1 arguments but the jvp has 2"),
    ({"vjp": (_rule,), "vjp_reads": ((), ())}, "describes 2 arguments but the vjp has 1"),
    ({"vjp": (_rule,), "vjp_reads": ((1,),)}, "names 1, but the primitive has 1 arguments"),
    ({"vjp": (_rule,), "vjp_reads": ((-2,),)}, "names -2"),
    ({"vjp": (_rule,), "vjp_reads": (0,)}, "one tuple of ints per argument"),
    ({"jvp": (_rule, 3)}, "jvp rule 1 is not callable"),
    ({"vjp": 3}, "vjp must be a tuple"),
    ({"differentiable": False, "jvp": (_rule,)}, "differentiable=False declares no derivative"),
    ({"differentiable": False, "linear": True, "transpose": (_rule,)},
     "linear, transpose are given"),
    ({"differentiable": False, "vjp_reads": ((),)}, "vjp_reads is given"),
    ({"transparent": True}, "requires composite=True"),
])
def test_rejected_declarations_name_the_primitive(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        Primitive("bad_declaration", _ident, register=False, **kwargs)
    assert "'bad_declaration'" in str(info.value)


def test_rejected_name_and_impl():
    with pytest.raises(TypeError, match="non-empty string"):
        Primitive("", _ident, register=False)
    with pytest.raises(ValueError, match="'no_impl': impl must be callable"):
        Primitive("no_impl", None, register=False)


def test_two_outputs_with_vjp_reads_work_under_grad():
    # Used to fail under grad with "object of type 'NoneType' has no len()": the output was
    # dropped, but the backward sweep needs it. The outputs of such a primitive are kept now.
    sincos = Primitive(
        "sincos_test", lambda x: (np.sin(x), np.cos(x)), multiple_results=True,
        register=False, vjp_reads=((0,),),
        jvp=(lambda t, out, x: (t * dnp.cos(x), -t * dnp.sin(x)),),
        vjp=(lambda ct, out, x: ct[0] * dnp.cos(x) - ct[1] * dnp.sin(x),))
    assert sincos.keep_plan[1] == (None, True)

    def f(x):
        s, c = sincos(x)
        return dnp.sum(s * 3.0 + c * c)

    x = np.linspace(-1.0, 1.0, 5)
    np.testing.assert_allclose(dp.grad(f)(x), 3.0 * np.cos(x) - 2 * np.cos(x) * np.sin(x),
                               rtol=1e-14)
    check_grads(f, (x,), order=2)


def test_a_transpose_that_reads_its_operand_fails_clearly():
    # The operand of a linear primitive is kept as its shape only: reading its value is a bug
    # in the transpose (the primitive would not be linear), reported as such.
    bad = Primitive("bad_linear_test", lambda x: 2.0 * x, linear=True, register=False,
                    transpose=(lambda ct, out, x: ct * x,))
    _, vjp_fn = dp.vjp(lambda x: bad(dnp.sin(x)), np.ones(2))
    with pytest.raises(TypeError, match="vjp_reads"):
        vjp_fn(np.ones(2))
    assert isinstance(ShapeOnly((2,), np.float64), ShapeOnly)
