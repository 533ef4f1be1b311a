"""Conformance of every public diffprog.numpy function with NumPy on array_like inputs.

Each function of ``dnp.__all__`` and ``dnp.linalg.__all__`` is called on Python scalars, lists,
nested lists with a traced entry, 0-d, empty (size-0) and broadcast inputs, in float32 and
float64, with the inputs traced by ``dp.jvp`` and under ``dp.jit``; the result's dtype, shape
and values must be NumPy's for the same concrete inputs (where NumPy raises, diffprog must
raise too). Every input is built from one scalar ``t`` (1.0 of the case's dtype): traced arrays
are ``t * constant``, so their values are exactly the constants NumPy is given.

The names that take no array_like input (or need a different kind of test) are listed in
``EXEMPT`` with the reason; a new public function without cases or a reason fails
``test_every_function_is_covered``.

NumPy itself cannot take a list holding traced values: ``np.sin([x, y])`` converts the list with
``np.asarray``, which never consults ``__array_function__`` inside a list, so it raises the
traced value's conversion error (``test_numpy_lists_of_tracers_raise``); ``dnp.sin([x, y])``
stacks the list and works.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import scipy.special

import diffprog as dp
import diffprog.numpy as dnp

F32, F64 = np.float32, np.float64


def _values(shape: tuple, dtype: type, lo: float = 0.1, hi: float = 0.9) -> np.ndarray:
    """Distinct, unsorted values in [lo, hi): the fractional parts of k times the golden ratio."""
    n = int(np.prod(shape))
    frac = (np.arange(1, n + 1) * 0.6180339887498949) % 1.0
    return (lo + (hi - lo) * frac).reshape(shape).astype(dtype)


class Op:
    """An operand: ``make(t, dtype)`` builds it from the scalar ``t`` (traced or concrete)."""

    def __init__(self, kind: str, shape: tuple = (), lo: float = 0.1, hi: float = 0.9,
                 value: object = None) -> None:
        self.kind, self.shape, self.lo, self.hi, self.value = kind, shape, lo, hi, value

    def make(self, t: object, dtype: type) -> object:
        v = _values(self.shape, dtype, self.lo, self.hi)
        if self.kind == "array":  # traced array
            return t * v
        if self.kind == "const":  # untraced ndarray
            return v
        if self.kind == "scalar":  # a Python float
            return float(self.value if self.value is not None else v.flat[0])
        if self.kind == "list":  # a nested list whose first entry is traced
            out = v.tolist()
            if not self.shape:
                return t * v
            inner = out
            while isinstance(inner[0], list):
                inner = inner[0]
            inner[0] = t * v.flat[0]
            return out
        if self.kind == "plainlist":  # a nested list of Python floats
            return v.tolist()
        if self.kind == "mask":  # a traced boolean array
            return t * v > 0.5
        if self.kind == "cmask":  # a constant boolean array
            return v > 0.5
        if self.kind == "sorted":  # a traced sorted array
            return t * np.sort(v)
        raise AssertionError(self.kind)

    def __repr__(self) -> str:
        return f"{self.kind}{self.shape}"


def A(*shape: int, lo: float = 0.1, hi: float = 0.9) -> Op:
    return Op("array", shape, lo, hi)


def C(*shape: int, lo: float = 0.1, hi: float = 0.9) -> Op:
    return Op("const", shape, lo, hi)


def L(*shape: int, lo: float = 0.1, hi: float = 0.9) -> Op:
    return Op("list", shape, lo, hi)


def PL(*shape: int) -> Op:
    return Op("plainlist", shape)


def M(*shape: int, const: bool = False) -> Op:
    return Op("cmask" if const else "mask", shape)


def S(value: float = 0.4) -> Op:
    return Op("scalar", (), value=value)


def case(*args: object, **kwargs: object) -> tuple:
    return args, kwargs


def _build(spec: tuple, t: object, dtype: type) -> tuple:
    args, kwargs = spec

    def make(a: object) -> object:
        if isinstance(a, Op):
            return a.make(t, dtype)
        if isinstance(a, (list, tuple)) and any(isinstance(i, Op) for i in a):
            return type(a)(make(i) for i in a)
        return a
    return [make(a) for a in args], {k: make(v) for k, v in kwargs.items()}


# ------------------------------------------------------------------------------------------------
# The cases of each function

UNARY = [case(A(3)), case(A(2, 3)), case(S()), case(L(3)), case(L(2, 2)), case(A()),
         case(A(0)), case(PL(3))]
BINARY = [case(A(3, 1), A(4)), case(A(3), S()), case(S(), A(3)), case(L(3), A(3)),
          case(A(2, 2), L(2, 2)), case(A(), A(3)), case(A(0), S()), case(C(3), A()),
          case(L(3), PL(3)), case(A(2, 3), PL(3))]
REDUCE = [case(A(2, 3)), case(A(2, 3), axis=0), case(A(2, 3), axis=-1, keepdims=True),
          case(A(2, 3), axis=(0, 1)), case(L(2, 3), axis=1), case(L(3)), case(S()), case(A()),
          case(A(0, 3), axis=0), case(A(0, 3), axis=1), case(A(0))]
ARG = [case(A(2, 3)), case(A(2, 3), axis=0), case(L(2, 3), axis=1), case(L(3)), case(S()),
       case(A()), case(A(0, 3), axis=1)]
SCAN = [case(A(2, 3)), case(A(2, 3), axis=0), case(L(2, 3), axis=1), case(L(3)), case(S()),
        case(A()), case(A(0, 3), axis=0)]
VAR = REDUCE + [case(A(2, 3), axis=1, ddof=1), case(A(2, 3), axis=(0, 1), ddof=2, keepdims=True),
                case(A(2, 3), axis=0, ddof=2), case(A(2, 3), axis=0, ddof=3),
                case(L(3), ddof=np.int64(1)), case(A(2, 3), axis=1, correction=1),
                case(A(2, 3), ddof=0.5)]
SEQ = [case([A(3), A(3)]), case([A(3), PL(3)]), case([L(3), A(3)]), case([A(2, 3), C(2, 3)]),
       case([A(), S()]), case([A(0), A(0)]), case((A(3), L(3)))]
MAT = [case(A(2, 2, lo=1, hi=2) ), case(L(2, 2, lo=1, hi=2)), case(A(3, 2, 2, lo=1, hi=2)),
       case(S()), case(A(0, 0))]
MATRIX_OPS = [case(A(2, 3), A(3)), case(L(2, 2), A(2)), case(A(3), L(3)), case(A(2, 3), PL(3, 2)),
              case(A(4, 2, 3), A(3, 2)), case(A(), A(3)), case(S(), A(3)), case(A(0, 2), A(2))]


def _spd(t: object, dtype: type, n: int = 3) -> object:
    v = _values((n, n), dtype)
    return t * (v @ v.T + n * np.eye(n, dtype=dtype))


class SPD(Op):
    def __init__(self, n: int = 3, as_list: bool = False) -> None:
        super().__init__("spd", (n, n))
        self.n, self.as_list = n, as_list

    def make(self, t: object, dtype: type) -> object:
        m = _spd(t, dtype, self.n)
        if self.as_list:
            c = _spd(dtype(1.0), dtype, self.n).tolist()
            c[0][0] = m[0, 0]
            return c
        return m


def I(*values: int) -> np.ndarray:  # noqa: E743
    return np.array(values, dtype=np.intp)


CASES: dict[str, list] = {}
for _name in ["negative", "positive", "square", "sqrt", "cbrt", "reciprocal", "exp", "exp2",
              "expm1", "log", "log2", "log10", "log1p", "sin", "cos", "tan", "arcsin", "arccos",
              "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "deg2rad",
              "rad2deg", "radians", "degrees", "abs", "absolute", "fabs", "sign", "real", "imag",
              "conj", "conjugate", "angle", "floor", "ceil", "round", "around", "trunc", "rint",
              "logical_not", "invert", "bitwise_not", "isfinite", "isnan", "isinf", "signbit",
              "sinc", "nan_to_num", "zeros_like", "ones_like", "empty_like", "shape", "ndim",
              "size", "ravel", "transpose", "permute_dims", "squeeze", "flip", "copy", "array",
              "asarray", "atleast_1d", "atleast_2d", "atleast_3d", "nonzero", "argwhere",
              "flatnonzero", "matrix_transpose", "diagonal", "fliplr", "flipud", "rot90",
              "diag", "trace", "tril", "triu"]:
    CASES[_name] = UNARY
for _name in ["add", "subtract", "multiply", "divide", "true_divide", "power", "float_power",
              "maximum", "minimum", "fmax", "fmin", "logaddexp", "logaddexp2", "arctan2",
              "hypot", "mod", "remainder", "fmod", "floor_divide", "divmod", "logical_and",
              "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor", "less",
              "less_equal", "greater", "greater_equal", "equal", "not_equal", "outer", "kron",
              "broadcast_arrays", "meshgrid", "append", "vdot", "inner", "dot", "matmul",
              "vecdot", "convolve", "correlate", "polyval"]:
    CASES[_name] = BINARY
for _name in ["sum", "mean", "max", "min", "amax", "amin", "prod", "ptp", "nansum", "nanmean",
              "all", "any", "count_nonzero", "median", "logsumexp"]:
    CASES[_name] = REDUCE
for _name in ["argmax", "argmin"]:
    CASES[_name] = ARG
for _name in ["cumsum", "cumprod", "sort", "argsort"]:
    CASES[_name] = SCAN
CASES["var"] = CASES["std"] = VAR
for _name in ["concatenate", "concat", "stack", "hstack", "vstack", "dstack", "column_stack"]:
    CASES[_name] = SEQ
for _name in ["inv", "det", "slogdet", "cholesky", "eigh", "eigvalsh", "svd", "svdvals", "qr",
              "pinv", "matrix_norm", "matrix_rank", "cond"]:
    CASES["linalg." + _name] = MAT
CASES["linalg.cholesky"] = CASES["linalg.eigh"] = CASES["linalg.eigvalsh"] = [
    case(SPD()), case(SPD(as_list=True)), case(S()), case(A(0, 0))]
CASES["linalg.matrix_transpose"] = UNARY
# np.unstack takes arrays only (a list raises AttributeError); dnp.unstack takes array_like
CASES["unstack"] = [c for c in UNARY if not isinstance(c[0][0], Op) or c[0][0].kind not in (
    "list", "plainlist", "scalar")]
CASES["linalg.matmul"] = MATRIX_OPS
CASES["matmul"] = MATRIX_OPS + BINARY
CASES["linalg.solve"] = [case(A(2, 2, lo=1, hi=2), A(2)), case(PL(2, 2), A(2)),
                         case([[1.0, 2.0], [3.0, 4.0]], L(2)), case(L(2, 2, lo=1, hi=2), PL(2, 1)),
                         case(A(3, 2, 2, lo=1, hi=2), A(2, 1)), case(S(), A(2))]
CASES["linalg.solve_triangular"] = [case(A(2, 2, lo=1, hi=2), A(2)),
                                    case(L(2, 2, lo=1, hi=2), PL(2), lower=True),
                                    case(PL(2, 2), L(2, 3))]
CASES["linalg.lstsq"] = [case(A(3, 2), A(3)), case(L(3, 2), PL(3)), case(PL(3, 2), L(3, 2))]
CASES["linalg.norm"] = REDUCE[:5] + [case(A(2, 3), ord=1), case(L(2, 2), ord="fro"), case(S()),
                                     case(A()), case(A(2, 3), ord=2), case(L(3), ord=np.inf)]
CASES["linalg.vector_norm"] = [case(A(2, 3)), case(L(3)), case(S()), case(A()), case(A(0)),
                               case(A(2, 3), axis=1, ord=1, keepdims=True)]
CASES["linalg.matrix_power"] = [case(A(2, 2), 3), case(L(2, 2), 0), case(A(2, 2, lo=1, hi=2), -1)]
CASES["linalg.multi_dot"] = [case([A(2, 3), A(3, 2)]), case([L(3), A(3, 2), PL(2)]),
                             case([A(2, 2), PL(2, 2), L(2, 2)])]
CASES["linalg.tensordot"] = CASES["tensordot"] = [
    case(A(2, 3), A(3, 2), axes=1), case(L(2, 3), PL(2, 3)),
    case(A(2, 3), L(3), axes=([1], [0])), case(A(), A(3), axes=0)]
CASES["einsum"] = [case("ij,j->i", A(2, 3), A(3)), case("i,i", L(3), PL(3)),
                   case("ij->ji", L(2, 2)), case("i,i->", A(0), A(0)), case("i,->i", A(3), S())]
CASES["where"] = [case(M(3), A(3), S()), case(A(3, 1), PL(2), A(2)),
                  case(M(3, const=True), [1.0, 2.0, 3.0], A(3)), case(L(3), A(3), A(3)),
                  case(M(3), L(3), A(3)), case(M(2, 1), A(), PL(3))]
CASES["clip"] = [case(A(3), 0.2, 0.6), case(L(3), S(0.3), A(3)), case(S(), A(3), 0.8),
                 case(A(2, 2), PL(2), None), case(A(0), 0.0, 1.0)]
CASES["astype"] = [case(A(3), np.float32), case(L(3), np.float64), case(S(), np.float32),
                   case(A(2), np.int64)]
CASES["full_like"] = [case(A(3), 2.0), case(S(), A()), case(L(3), S()), case(10.0, A())]
CASES["result_type"] = [case(A(3), 1.0), case(A(), np.float32), case(S(), A(3))]
CASES["cross"] = [case(A(3), A(3)), case(L(3), PL(3)), case(A(2, 3), L(3))]
CASES["diff"] = [case(A(4)), case(L(2, 3), axis=0), case(A(4), n=2), case(A(4), prepend=S()),
                 case(A(0))]
CASES["gradient"] = [case(A(4)), case(L(4)), case(A(4), 0.5), case(A(3, 4), axis=1)]
CASES["linspace"] = [case(A(), S(2.0), 5), case(S(), A(), 4), case(L(2), A(2), 3)]
CASES["logspace"] = [case(A(), S(2.0), 5), case(S(), A(), 4)]
CASES["geomspace"] = [case(A(), S(2.0), 5), case(S(), A(), 4)]
CASES["insert"] = [case(A(4), 1, S()), case(L(4), 2, A()), case(A(2, 3), 1, L(3), axis=0)]
CASES["delete"] = [case(A(4), 1), case(L(4), [0, 2]), case(A(2, 3), 1, axis=1)]
CASES["vsplit"] = [case(A(4, 2), 2), case(L(2, 2), 2)]
CASES["hsplit"] = [case(A(4), 2), case(L(2, 4), 2)]
CASES["dsplit"] = [case(A(1, 2, 4), 2)]
CASES["split"] = CASES["array_split"] = [case(A(4), 2), case(L(4), [1]), case(A(2, 4), 2, axis=1)]
CASES["rollaxis"] = [case(A(2, 3, 4), 2), case(L(2, 3), 1)]
CASES["partition"] = [case(A(5), 2), case(L(2, 3), 1)]
CASES["trapezoid"] = [case(A(4)), case(L(4)), case(A(4), C(4)), case(A(4), dx=S(0.5)),
                      case(A(2, 3), axis=0)]
CASES["interp"] = [case(A(3), C(4), A(4)), case(L(3), PL(4), A(4)), case(S(), A(4), L(4))]
CASES["polyfit"] = [case(C(4), A(4), 1), case(PL(4), L(4), 2)]
CASES["polyval"] = BINARY[:5] + [case([A(), S(), 1.0], A(3))]
CASES["reshape"] = [case(A(2, 3), (3, 2)), case(L(2, 3), -1), case(S(), (1, 1)), case(A(0), (0, 2))]
CASES["moveaxis"] = [case(A(2, 3, 4), 0, -1), case(L(2, 3), 0, 1)]
CASES["swapaxes"] = [case(A(2, 3, 4), 0, 2), case(L(2, 3), 0, 1)]
CASES["expand_dims"] = [case(A(3), 0), case(L(3), (0, 2)), case(S(), 0)]
CASES["broadcast_to"] = [case(A(3), (2, 3)), case(L(3), (2, 3)), case(S(), (2,)),
                         case(A(0), (2, 0))]
CASES["tile"] = [case(A(3), 2), case(L(2), (2, 2)), case(S(), 3)]
CASES["repeat"] = [case(A(3), 2), case(L(3), [1, 0, 2]), case(S(), 3), case(A(2, 2), 2, axis=1)]
CASES["roll"] = [case(A(4), 1), case(L(2, 3), -1, axis=1), case(S(), 1)]
CASES["pad"] = [case(A(3), 1), case(L(3), (1, 2), constant_values=S(0.5)),
                case(A(2, 2), 1, constant_values=A()), case(A(3), 1, mode="edge")]
CASES["take"] = [case(A(4), I(0, 2)), case(L(4), [3, 1]), case(A(2, 3), 1, axis=1),
                 case(PL(4), I(1))]
# np.take_along_axis takes arrays only (a list raises AttributeError); dnp's takes array_like
CASES["take_along_axis"] = [case(A(2, 3), I(0, 2).reshape(1, 2), axis=1),
                            case(A(3), I(2, 0), axis=0)]
CASES["searchsorted"] = [case(Op("sorted", (4,)), A(3)), case([0.1, 0.3, 0.5], L(2))]
CASES["select"] = [case([M(3)], [A(3)], S()), case([M(3, const=True)], [L(3)], A(3))]
CASES["average"] = [case(A(2, 3)), case(L(2, 3), axis=1, weights=PL(3)),
                    case(A(3), weights=L(3)), case(S())]
CASES["quantile"] = [case(A(5), S(0.3)), case(L(2, 3), 0.5, axis=1), case(A(5), A()),
                     case(A(5), L(2))]
CASES["percentile"] = [case(A(5), S(30.0)), case(L(2, 3), 50.0, axis=1), case(A(5), L(2))]
# diffprog/numpy/_names.py: NumPy 2 aliases, full, NumPy 2 scans and products, NaN-aware reductions
for _name, _same_as in [("acos", "arccos"), ("asin", "arcsin"), ("atan", "arctan"),
                        ("acosh", "arccosh"), ("asinh", "arcsinh"), ("atanh", "arctanh"),
                        ("atan2", "arctan2"), ("pow", "power")]:
    CASES[_name] = CASES[_same_as]
for _name in ["nanmax", "nanmin", "nanprod", "nanmedian"]:
    CASES[_name] = REDUCE
CASES["nanargmax"] = CASES["nanargmin"] = ARG
CASES["iscomplexobj"] = CASES["isrealobj"] = UNARY
CASES["nancumsum"] = CASES["nancumprod"] = SCAN
CASES["nanvar"] = CASES["nanstd"] = VAR
CASES["nanquantile"] = [case(A(5), S(0.3)), case(L(2, 3), 0.5, axis=1), case(A(5), [0.2, 0.7]),
                        case(A(2, 3), C(2), axis=0, keepdims=True), case(S(), 0.1)]
CASES["nanpercentile"] = [case(A(5), S(30.0)), case(L(2, 3), 50.0, axis=1),
                          case(A(5), [20.0, 70.0]), case(A(2, 3), 10, axis=0, keepdims=True)]
CASES["full"] = [case((2, 3), A()), case(3, S()), case((2, 2), A(2)), case((2,), A(), dtype=F32),
                 case((0,), A()), case([2, 1], L(1))]
CASES["cumulative_sum"] = CASES["cumulative_prod"] = [
    case(A(3)), case(A(2, 3), axis=1), case(L(3), include_initial=True),
    case(A(2, 3), axis=0, include_initial=True), case(A(0)), case(A(2, 3))]
for _name in ["heaviside", "copysign", "isclose", "allclose", "array_equal"]:
    CASES[_name] = BINARY
for _name in ["isneginf", "isposinf", "isreal", "iscomplex", "fix", "modf"]:
    CASES[_name] = UNARY
CASES["ldexp"] = [case(A(3), I(1, 2, 3)), case(L(2, 2), 2), case(S(), I(1)), case(A(), I(0, 4)),
                  case(A(0), 1)]
CASES["diagflat"] = [case(A(3)), case(L(2, 2)), case(A(2), 1), case(S()), case(A(0))]
CASES["vander"] = [case(A(3)), case(L(3), 4), case(A(3), 2, True), case(A(2), 1), case(A(2), 0),
                   case(A(0))]
CASES["ediff1d"] = [case(A(4)), case(L(2, 2)), case(A(3), to_begin=S(), to_end=L(2)),
                    case(A(3), to_end=PL(2)), case(A(0)), case(S())]
for _name in ["polyadd", "polysub", "polymul"]:
    CASES[_name] = [case(A(3), A(2)), case(L(2), PL(4)), case(S(), A(3)), case(A(1), L(1))]
CASES["polyder"] = [case(A(4)), case(L(3), 2), case(A(2), 3), case(A(3), 0)]
CASES["polyint"] = [case(A(3)), case(L(3), 2), case(A(2), 2, S()), case(A(2), 2, L(2)),
                    case(A(3), k=A())]
CASES["sort_complex"] = [case(A(4)), case(L(3)), case(A(0))]
CASES["cov"] = [case(A(2, 4)), case(L(3, 4), rowvar=False), case(A(4), A(4)), case(A(4), PL(4)),
                case(A(2, 4), bias=True), case(A(3, 4), ddof=2), case(A(1, 4))]
CASES["corrcoef"] = [case(A(2, 4)), case(L(3, 4), rowvar=False), case(A(4), A(4)),
                     case(A(3, 4))]
CASES["resize"] = [case(A(3), (2, 2)), case(L(2, 2), 5), case(A(4), (2,)), case(S(), (2, 3)),
                   case(A(3), 0), case(A(0), (2,))]
CASES["isin"] = [case(A(3), C(2)), case(L(2, 2), PL(3)), case(S(), A(3)), case(A(3), A(0)),
                 case(A(3), C(2), invert=True)]
CASES["digitize"] = [case(A(4), C(3)), case(L(3), [0.2, 0.5]), case(A(4), Op("sorted", (3,))),
                     case(A(4), [0.7, 0.3], True), case(S(), C(2), right=True)]
CASES["bincount"] = [case(I(0, 2, 2), A(3)), case(I(1, 1), L(2), minlength=4), case(I(0, 3))]
CASES["histogram"] = [case(C(6), 3, weights=A(6)), case(C(5), 2, (0.0, 1.0), weights=L(5)),
                      case(C(4), [0.0, 0.5, 1.0], weights=A(4), density=True)]
CASES["compress"] = [case([True, False, True], A(3)), case(M(2, const=True), L(2, 3), axis=0),
                     case([False, True], A(2, 2), axis=1)]
CASES["extract"] = [case(M(3, const=True), A(3)), case(M(2, 2, const=True), L(2, 2))]
CASES["choose"] = [case(I(1, 0, 1), [A(3), C(3)]), case(I(0, 1), [L(2), PL(2)]),
                   case(I(2, 0), [A(2), S(), A(2)]), case(I(3, 1), [A(2), A(2)], mode="wrap")]
CASES["unwrap"] = [case(A(4, lo=0, hi=8)), case(L(2, 3), axis=0), case(A(4), 1.0),
                   case(A(5, lo=0, hi=20), period=6.0), case(A(0))]
CASES["argpartition"] = [case(A(3), 1), case(L(2, 2), 0), case(A(4), 3)]
CASES["piecewise"] = [case(A(3), [M(3, const=True)], [np.sin, 2.0]),
                      case(A(4), [M(4)], [np.cos]), case(L(2), [M(2, const=True)], [1.0])]
CASES["i0"] = UNARY + [case(A(4, lo=-12, hi=12)), case(L(3, lo=5, hi=30))]
CASES["matvec"] = [case(A(2, 3), A(3)), case(A(4, 2, 3), L(3)), case(PL(2, 3), A(2, 3)),
                   case(A(3), A(3))]
CASES["vecmat"] = [case(A(3), A(3, 2)), case(L(3), A(4, 3, 2)), case(A(2, 3), PL(3, 2)),
                   case(A(3), A(3))]

# The output shape of these depends on the values, which jit does not know: they raise under
# jit (with a message that says so) and are compared traced eagerly only.
NO_JIT = {"nonzero", "argwhere", "flatnonzero"}

# Where the result is defined up to signs (eigenvectors, singular vectors, Q and R), only the
# dtype and shape of every output are compared, and the values of the outputs listed here.
VALUES_OF = {"linalg.eigh": [0], "linalg.svd": [1], "linalg.qr": [], "empty_like": []}

# The reference for functions NumPy does not have.
REFERENCE = {"logsumexp": scipy.special.logsumexp,
             "linalg.solve_triangular": scipy.linalg.solve_triangular,
             "astype": lambda x, dtype: np.asarray(x).astype(dtype)}

EXEMPT = {
    "float32": "a dtype, not a function", "float64": "a dtype, not a function",
    "linalg.EigResult": "a result type",
    "linalg.eig": "traced results are always complex (NumPy's are real for a real spectrum): "
                  "tests/test_complex_linalg.py compares them with NumPy's",
    "linalg.eigvals": "as linalg.eig",
    "pi": "a constant", "e": "a constant", "inf": "a constant", "nan": "a constant",
    "newaxis": "a constant",
    "at": "functional updates of an array (x.at[i].set(v)); no NumPy counterpart, tested in "
          "test_numpy_shapes/test_jit_gather",
    "r_": "an index object, not a function: test_index_objects",
    "c_": "an index object, not a function: test_index_objects",
    "linalg.LinAlgError": "an exception class", "linalg.SlogdetResult": "a result type",
    "linalg.EighResult": "a result type", "linalg.SVDResult": "a result type",
    "linalg.QRResult": "a result type", "linalg.LstsqResult": "a result type",
    "real_if_close": "its result's dtype depends on the values, so jit cannot trace it: "
                     "test_complex.py::test_real_if_close",
    **{n: "NumPy's own constructor or dtype object (no array_like operand): "
          "test_numpy_names.py::test_numpy_objects"
       for n in ["zeros", "ones", "empty", "arange", "eye", "identity", "tri", "indices",
                 "diag_indices", "tril_indices", "triu_indices", "int8", "int16", "int32",
                 "int64", "uint8", "uint16", "uint32", "uint64", "float16", "complex64",
                 "complex128", "bool_", "dtype", "finfo", "iinfo", "promote_types",
                 "can_cast", "isscalar"]},
    "put_along_axis": "returns the updated copy where NumPy writes in place and returns None: "
                      "test_numpy_names.py::test_put_along_axis",
}


def _function(name: str) -> tuple:
    if name.startswith("linalg."):
        short = name[len("linalg."):]
        ours = getattr(dnp.linalg, short)
        ref = REFERENCE.get(name) or getattr(np.linalg, short)
    else:
        ours = getattr(dnp, name)
        ref = REFERENCE.get(name) or getattr(np, name)
    return ours, ref


def test_every_function_is_covered() -> None:
    names = list(dnp.__all__) + ["linalg." + n for n in dnp.linalg.__all__]
    missing = [n for n in names if n not in CASES and n not in EXEMPT]
    assert not missing, f"public functions without conformance cases or a reason: {missing}"


# ------------------------------------------------------------------------------------------------
# Comparison

def _same(expected: object, got: object, dtype: type, values: bool = True) -> None:
    if isinstance(expected, (tuple, list)):
        assert isinstance(got, (tuple, list)), f"expected a sequence, got {type(got)}"
        assert len(got) == len(expected)
        for e, g in zip(expected, got):
            _same(e, g, dtype, values)
        return
    if isinstance(expected, (tuple, np.dtype, type)):
        assert got == expected
        return
    e, g = np.asarray(expected), np.asarray(got)
    assert g.dtype == e.dtype, f"dtype {g.dtype}, NumPy's {e.dtype}"
    assert g.shape == e.shape, f"shape {g.shape}, NumPy's {e.shape}"
    if not values:
        return
    if e.dtype.kind in "fc":
        tol = 2e-5 if e.dtype.itemsize <= 4 * (2 if e.dtype.kind == "c" else 1) else 1e-11
        np.testing.assert_allclose(g, e, rtol=tol, atol=tol, equal_nan=True)
    else:
        np.testing.assert_array_equal(g, e)


def _compare(name: str, spec: tuple, dtype: type, jit: bool) -> None:
    ours, ref = _function(name)
    t0 = dtype(1.0)
    args, kwargs = _build(spec, t0, dtype)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            expected = ref(*args, **kwargs)
        except Exception:  # NumPy's refusal, which diffprog must share
            expected = None
            if name == "linalg.matrix_rank" and np.size(args[0]) == 0:
                # NumPy < 2.3 refused an empty matrix; later ones (and diffprog) give rank 0
                expected = np.asarray(0)

    def f(t: object) -> object:
        a, k = _build(spec, t, dtype)
        return ours(*a, **k)

    values_of = VALUES_OF.get(name)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        runs = [lambda: dp.jvp(f, (t0,), (dtype(1.0),))[0]]
        if jit and name not in NO_JIT:
            runs.append(lambda: dp.jit(f, compile="never")(t0))
        for run in runs:
            if expected is None:
                with pytest.raises(Exception):  # noqa: B017 - any of NumPy's errors
                    run()
                continue
            got = run()
            if values_of is None:
                _same(expected, got, dtype)
            else:
                _same(expected, got, dtype, values=False)
                for i in values_of:
                    _same(expected[i], got[i], dtype)


def _all_cases(thorough: bool) -> list:
    out = []
    for name, cases in CASES.items():
        for i, spec in enumerate(cases):
            for dtype in (F64, F32):
                # the fast run: every case in float64 (traced eagerly, the first two under jit
                # too) and the first case in float32; the slow run: everything, both ways.
                if not thorough and dtype is F32 and i > 0:
                    continue
                jit = thorough or i < 2
                out.append(pytest.param(name, spec, dtype, jit,
                                        id=f"{name}-{i}-{np.dtype(dtype).name}"))
    return out


@pytest.mark.parametrize("name, spec, dtype, jit", _all_cases(False))
def test_conformance(name: str, spec: tuple, dtype: type, jit: bool) -> None:
    _compare(name, spec, dtype, jit)


@pytest.mark.slow
@pytest.mark.parametrize("name, spec, dtype, jit", _all_cases(True))
def test_conformance_thorough(name: str, spec: tuple, dtype: type, jit: bool) -> None:
    _compare(name, spec, dtype, jit)


@pytest.mark.parametrize("q", [0.0, 0.3, 0.62, 1.0, [0.2, 0.9]])
def test_quantile_traced_q_under_jit(q: object) -> None:
    """Under jit a traced q's positions in the sorted values are gathered at traced indices:
    the values, and the derivative in q (the slope between the neighbours), as eagerly."""
    a = _values((2, 5), F64)
    q = np.asarray(q)
    f = dp.jit(lambda a, q: dnp.quantile(a, q, axis=1), compile="never")
    np.testing.assert_allclose(f(a, q), np.quantile(a, q, axis=1), rtol=1e-12)
    g = dp.jit(dp.grad(lambda a, q: dnp.quantile(a, q, axis=1).sum(), (0, 1)), compile="never")
    eager = dp.grad(lambda a, q: dnp.quantile(a, q, axis=1).sum(), (0, 1))(a, q)
    for got, want in zip(g(a, q), eager):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    h = 1e-7  # away from the kinks at the sorted values
    if 0 < q.min() and q.max() < 1:
        np.testing.assert_allclose(eager[1], (np.quantile(a, q + h, axis=1).sum(axis=-1)
                                              - np.quantile(a, q - h, axis=1).sum(axis=-1))
                                   / (2 * h), rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# The examples of issue 12 §6, index objects, and what NumPy itself does with lists of tracers

def test_issue_examples() -> None:
    def f(x: object) -> object:
        y = 2.0 * x
        return (dnp.mean([x, y]) + dnp.array([[x, 1.0], [2.0, y]]).sum()
                + dnp.zeros_like(10.0) + dnp.r_[x, [1.0, 2.0]].sum()
                + dnp.concatenate([dnp.atleast_1d(x), [1.0, 2.0]]).sum() + dnp.sum([x, 2.0])
                + dnp.linalg.solve([[1.0, 2.0], [3.0, 4.0]], dnp.array([x, y])).sum()
                + dnp.where(dnp.array([x, y]) > 0, [1.0, 2.0], y).sum()
                + dnp.sin([x, y]).sum())
    x = 0.5
    # d/dx of each term: 1.5, 3, 0, 1, 1, 1, solve(A, [1, 2]) summed, 0, cos(x) + 2 cos(2x)
    expected = (1.5 + 3 + 1 + 1 + 1 + np.linalg.solve([[1.0, 2.0], [3.0, 4.0]], [1.0, 2.0]).sum()
                + np.cos(x) + 2 * np.cos(2 * x))
    assert np.isclose(dp.grad(f)(x), expected, rtol=1e-12)
    assert np.isclose(dp.jit(dp.grad(f), compile="never")(x), expected, rtol=1e-12)
    assert dnp.zeros_like(10.0).dtype == np.float64 and dnp.zeros_like(10).dtype == np.int_


@pytest.mark.parametrize("dtype", [F64, F32])
def test_index_objects(dtype: type) -> None:
    t0 = dtype(1.0)
    parts = _values((3,), dtype)

    def r(ix: object, t: object) -> object:
        return ix.r_[t * 0.5, t * parts, 1:3, [2.0, t]]

    def c(ix: object, t: object) -> object:
        return ix.c_[t * parts, parts, [t, 1.0, 2.0]]

    for build in (r, c):
        expected = build(np, t0)
        _same(expected, dp.jvp(lambda t: build(dnp, t), (t0,), (t0,))[0], dtype)  # noqa: B023
        _same(expected, dp.jit(lambda t: build(dnp, t), compile="never")(t0), dtype)  # noqa: B023


def test_numpy_lists_of_tracers_raise() -> None:
    """NumPy converts a list argument with np.asarray before any dispatch, so a traced entry
    raises diffprog's conversion error (which names dnp.array); the dnp function works."""
    def f(x: object) -> object:
        return np.sin([x, 2.0 * x]).sum()
    with pytest.raises(TypeError, match="np.array"):
        dp.grad(f)(0.5)
    assert np.isclose(dp.grad(lambda x: dnp.sin([x, 2.0 * x]).sum())(0.5),
                      np.cos(0.5) + 2 * np.cos(1.0))


# ------------------------------------------------------------------------------------------------
# var and std (issue 12 §8): NumPy's shapes and dtypes along axes, with ddof and correction

_MASK = np.array([[True, False, True], [True, True, False]])
VAR_KWARGS = [{}, {"axis": 1, "ddof": 1}, {"axis": (0, 1), "ddof": np.int64(1), "keepdims": True},
              {"axis": 0, "ddof": 2}, {"axis": 0, "ddof": 5, "keepdims": True},
              {"axis": -1, "correction": 1.5}, {"axis": 1, "dtype": np.float32},
              {"axis": 0, "dtype": np.float64}, {"axis": 1, "dtype": np.complex64},
              {"axis": 1, "where": _MASK}, {"axis": 1, "where": _MASK, "ddof": 1},
              {"axis": 0, "where": _MASK[0]}, {"axis": 1, "mean": "given"},
              {"axis": 0, "ddof": 1, "correction": 1}]
VAR_DTYPES = [np.int64, np.bool_, F32, F64, np.complex128]


def _var_cases() -> list:
    out = []
    for name in ("var", "std"):
        for dtype in VAR_DTYPES:
            for i, kw in enumerate(VAR_KWARGS):
                out.append(pytest.param(name, dtype, kw, id=f"{name}-{np.dtype(dtype).name}-{i}"))
    return out


@pytest.mark.parametrize("name, dtype, kw", _var_cases())
def test_var_std(name: str, dtype: type, kw: dict) -> None:
    r = np.arange(6).reshape(2, 3) * 0.7 % 3
    x = (r + 1j * r[:, ::-1] if np.dtype(dtype).kind == "c" else r).astype(dtype)
    if kw.get("mean") == "given":
        kw = dict(kw, mean=np.mean(x, axis=kw["axis"], keepdims=True))
    ours, ref = getattr(dnp, name), getattr(np, name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            expected = ref(x, **kw)
        except ValueError:
            expected = None
    warned = any("Degrees of freedom" in str(w.message) for w in caught)
    arithmetic = any("divide" in str(w.message) or "invalid" in str(w.message) for w in caught)
    runs = [lambda: dp.jit(lambda v: ours(v, **kw), compile="never")(x)]
    if np.dtype(dtype).kind in "fc":
        one = dtype(1.0)
        runs.append(lambda: dp.jvp(lambda t: ours(x * t, **kw), (one,), (one,))[0])
    for run in runs:
        if expected is None:
            with pytest.raises(ValueError, match="ddof and correction"):
                run()
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = run()
        assert warned == any("Degrees of freedom" in str(w.message) for w in caught)
        if not arithmetic:  # NumPy's arithmetic warns only where a where= slice is empty
            assert not [w for w in caught if "divide" in str(w.message)
                        or "invalid" in str(w.message)]
        _same(expected, got, dtype)


def test_var_std_gradients() -> None:
    """The derivative along an axis with ddof, against the closed form 2 (x - mean) / (n - ddof)
    and its std counterpart; a given traced mean gets -2 sum(x - mean) / (n - ddof)."""
    x = np.array([[1.0, 2.0, 4.0], [0.5, 0.5, 3.0]])
    d = x - x.mean(axis=1, keepdims=True)
    g = dp.grad(lambda v: dnp.var(v, axis=1, ddof=1).sum())(x)
    np.testing.assert_allclose(g, 2 * d / 2, rtol=1e-12)
    g = dp.grad(lambda v: dnp.std(v, axis=1, correction=1).sum())(x)
    np.testing.assert_allclose(g, d / 2 / np.std(x, axis=1, ddof=1, keepdims=True), rtol=1e-12)
    m = np.zeros((2, 1))
    g = dp.grad(lambda mu: dnp.var(x, axis=1, mean=mu).sum())(m)
    np.testing.assert_allclose(g, -2 * (x - m).sum(axis=1, keepdims=True) / 3, rtol=1e-12)


def test_quantile_q_batched_by_vmap() -> None:
    """Under vmap each example has its own q: the positions are gathered as under jit."""
    a = _values((5,), F64)
    q = np.array([0.0, 0.1, 0.5, 0.62, 1.0])
    np.testing.assert_allclose(dp.vmap(lambda q: dnp.quantile(a, q))(q), np.quantile(a, q),
                               rtol=1e-12)
    np.testing.assert_allclose(dp.vmap(lambda p: dnp.percentile(a, p))(100 * q),
                               np.percentile(a, 100 * q), rtol=1e-12)
    eager = [dp.grad(lambda t: dnp.quantile(a, t))(t) for t in q]
    np.testing.assert_allclose(dp.vmap(dp.grad(lambda t: dnp.quantile(a, t)))(q), eager,
                               rtol=1e-12)
