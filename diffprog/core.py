"""The core: primitives, ``bind``, tracers and traces.

Every operation on a traced value goes through :func:`bind`. It finds the highest-level trace
among the arguments and lets that trace process the primitive; values that belong to lower
levels (or to no trace at all) are constants to it. With no tracer among the arguments the
primitive's NumPy implementation runs directly, which is the fast path that plain code and
first-order backward passes take.

Levels come from one process-wide counter. A transform started while another runs gets a
higher level, so a trace never treats an enclosing transform's tracer as its own: that is what
keeps nested derivatives from being confused.
"""

from __future__ import annotations

import functools
import itertools
import sys

# threading's local and Lock are these (the threading module costs ~1.4 ms of `import diffprog`)
from _thread import _local as _thread_local
from _thread import allocate_lock
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["Primitive", "Tracer", "Trace", "bind", "primitives", "concrete", "NanError",
           "ShapedArray", "ShapeOnly", "shape_only", "SHAPE_ONLY", "ConcretizationError"]

# ``next`` on an itertools.count is atomic under the GIL, so threads get distinct levels.
_levels = itertools.count(1)

primitives: dict[str, Primitive] = {}


class Primitive:
    """A named operation with everything the transforms need, declared in one place.

    Args:
        name: unique name, shown in graphs and error messages.
        impl: the NumPy implementation, ``impl(*args, **params)``. Positional arguments are
            the operands (arrays, or Python scalars for constants); keyword ``params`` are static
            (shapes, axes, dtypes, subscripts) and are passed unchanged to every rule.
        jvp: the forward rule. Either a tuple with one function per argument,
            ``rule(tangent, out, *args, **params)`` giving that argument's contribution to the
            output tangent (contributions are summed; arguments with a zero tangent are
            skipped), or one function ``rule(tangents, out, *args, **params)`` where
            ``tangents`` holds ``None`` for a zero tangent. Not given with ``linear``.
        vjp: the reverse rule, in the same two forms: per argument
            ``rule(cotangent, out, *args, **params)`` giving that argument's cotangent (only
            called for arguments that need one), or one function returning a tuple (``None``
            for an argument without a cotangent). Not given with ``linear``.
        linear: declares the primitive linear, so that its rules follow from ``transpose`` alone
            and the jvp and vjp cannot disagree (JAX's ``deflinear``). ``True``: linear in all
            positional arguments jointly (``add``, ``neg``, ``reshape``, ``concatenate``); the
            derived jvp is the primitive applied to the tangents, zeros standing in for absent
            ones (or, when ``identity`` says the other operands' zero leaves the tangent
            unchanged, the tangent itself). A tuple of argument positions: linear in each of
            them separately, the others held fixed (``mul``, ``matmul``, ``einsum``:
            multilinear); the derived jvp sums, over the arguments with a tangent, the
            primitive applied with the tangent in that argument's place and the other
            arguments at their primal values. Arguments at other positions (an integer
            permutation) have no derivative. ``False`` (default): the rules are ``jvp`` and
            ``vjp``. The derived ``vjp`` is the transpose, and the derived ``vjp_reads``
            say: a transpose reads no output and no value of its own argument, only its shape
            and dtype; for a tuple ``linear`` it reads the other arguments.
        transpose: with ``linear`` only, the transposes that become the vjp: a tuple with one
            rule per argument, ``rule(cotangent, out, *args, **params)`` returning that
            argument's cotangent (``None`` at positions outside a tuple ``linear``), or, for a
            primitive with any number of operands (``einsum``, ``concatenate``), one function
            ``rule(k, cotangent, out, *args, **params)`` for argument ``k``. A transpose must
            not read ``out`` (it is ``None`` in reverse mode) nor the value of the argument it
            transposes (which may be a :class:`ShapeOnly`: use its ``shape`` and ``dtype``);
            a per-operand transpose may read the other arguments' values.
        transpose_reads_shapes: with a tuple ``transpose``: ``False`` declares that no
            transpose reads even the shape and dtype of the argument it transposes (an
            elementwise primitive's operand has the cotangent's: ``add``, ``neg``, ``mul``), so
            the reverse trace keeps ``None`` in its place instead of a :class:`ShapeOnly`.
            ``True`` (default): it keeps the shape.
        differentiable: ``False`` for operations whose output is piecewise constant
            (comparisons, ``sign``, ``floor``): traces compute them on primal values and the
            result carries no derivative. Such a primitive declares no rules.
        multiple_results: ``impl`` returns a tuple of arrays (``eigh``, ``qr``). Then ``out`` in
            the rules is that tuple, a jvp rule returns a tuple of output tangents (``None`` for
            zero) and a vjp rule receives a tuple of output cotangents (zeros where unused).
            The reverse trace always keeps the outputs of such a primitive (it needs their
            number and shapes for those zeros), whatever ``vjp_reads`` says.
        composite: ``impl`` is itself written with diffprog operations (custom rules,
            checkpoints), so it can run on traced values: jit inlines it.
        transparent: a derivative trace nested in another transform runs ``impl`` on the
            enclosing transform's values instead of binding the primitive there, so enclosing
            transforms differentiate the body op by op (custom_vjp: its residuals must be
            differentiable values of the enclosing transforms). Requires ``composite``.
        abstract: the shape rule, ``abstract(*args, **params)`` -> an object with ``shape`` and
            ``dtype`` (a tuple of them with ``multiple_results``), given arguments that have
            ``shape`` and ``dtype``. Without one, an elementwise primitive (one with a scalar
            form) broadcasts its operands' shapes and evaluates ``impl`` on one element of each
            dtype; any other is evaluated once on stand-in arrays.
        scalar: the scalar form, for fused elementwise kernels: a function of scalars (and the
            params) that numba can compile, equal to ``impl`` elementwise (NumPy is the oracle).
            A form that is not from ``math``, ``operator`` or NumPy is fused only for a
            registered primitive (kernels import it by name); with ``register=False`` the
            primitive runs through NumPy under jit.
            Where integer and float semantics need different code, a dict from strings of dtype
            kinds to forms (``{"f": np.floor, "biu": lambda x: x}``): the form whose key holds
            the kind NumPy computes the operands in is used; no such key: not fused.
        scalar_fast: the name of a function in ``diffprog.kernels.fastmath`` that a kernel may
            call instead of ``scalar`` (vectorizable, within fastmath's documented ulp bound).
            A name, not the function: primitives sit below the kernels and do not import them.
        scalar_fast_domain: the name of a ``diffprog.kernels.fastmath`` predicate on the
            arguments telling where ``scalar_fast`` is valid; where it is false for some element,
            the kernel is rerun with ``scalar`` (``None``: valid everywhere).
        rule_scalar: the elementwise rules in scalar form, one per argument (``None`` for an
            argument without one): a string expression in ``t`` (the tangent or cotangent),
            ``out`` and the arguments ``x``, ``y``, ``z``, with the arithmetic of the rule
            written in the same order and the functions of ``diffprog.kernels.fastmath``
            (valid where ``scalar_fast_domain`` holds for the arguments), equal to both the
            jvp contribution and the vjp of that argument on real operands (``tanh``:
            ``"t * (1.0 - out * out)"``). The eager kernels for large arrays
            (:func:`set_eager_provider`) run it in one pass instead of one NumPy call per
            operation. ``None`` (default): the rules run as written.
        identity: ``{i: c}``: when argument ``i`` is the constant ``c`` the result is the other
            argument of this binary primitive (``add``: ``{0: -0.0, 1: -0.0}``, as ``x + 0.0``
            is not ``x`` for ``x = -0.0``; ``mul``: ``{0: 1, 1: 1}``). Graph simplification drops
            such nodes; a ``linear`` jvp returns a lone tangent instead of adding a zero.
        involution: ``f(f(x)) = x`` (``neg``, ``conj``): simplification removes the pair.
        collapse: ``f(f(x, p), q) = f(x, q)`` (``reshape``, ``broadcast_to``): simplification
            applies the outer params to the inner input.
        vjp_reads: which values the vjp rules read, so that the reverse trace keeps only those
            (memory falls to what the backward pass needs). One tuple per argument, listing
            what the rule of that argument reads: ``-1`` the output, ``k`` the value of
            argument ``k``; e.g. ``mul``: ``((1,), (0,))``, ``exp``: ``((-1,),)``. An argument
            that is neither read nor a constant is replaced by ``None`` in the recorded node
            (for a ``linear`` primitive by a :class:`ShapeOnly`, as its transposes read shapes).
            ``None`` (default): everything is kept. Derived, not given, with ``linear``.
        register: enter the primitive in :data:`primitives` under its name (names are unique).
            Transforms' private primitives (jit, custom rules) pass ``False``.
        batch: the batching rule, for ``vmap`` (:mod:`diffprog.batching`). ``"elementwise"``:
            the operands are aligned to one shape (Python scalars aside), so the batch axis is
            moved to the front of the batched operands and the others are broadcast to the
            batched shape. ``"inline"`` (with ``composite`` only): ``impl`` runs on the batched
            values, so vmap sees the primitives of its body. Or a function
            ``rule(args, dims, **params) -> (out, out_dims)``: ``dims`` holds, per argument,
            the axis of its batch dimension or ``None`` (not batched; at least one is batched),
            and ``out_dims`` says where the batch axis of the output is (a tuple with
            ``multiple_results``; ``None`` for an output that is the same for every example).
            Written with diffprog operations, like every rule. ``None`` (default): vmap raises
            a TypeError naming the primitive.
        program_form: how the whole-program tier (:mod:`diffprog.kernels.wholeprog`) runs a
            node that is not elementwise, as a plan on the operands' elements in C order:
            ``form(avals, out, **params)`` (``shape``, ``dtype``, ``ndim`` of each operand
            and of the output) returns ``("same",)`` (the operand's elements, as
            ``reshape``), ``("gather", index)`` (output element ``i`` is element
            ``index[i]`` of the operands laid end to end), ``("scatter", index[, "assign"])``
            (zeros, with operand element ``i`` added at ``index[i]``; ``"assign"`` when no
            position repeats: the positions written start from -0.0, so that they take the
            values as they are, -0.0 included, as NumPy's assignment does),
            ``("matmul", batch, m, k, n, x_batched, y_batched)``, or ``None`` for operands or
            params it does not cover. A loop with ``multiple_results`` returns
            ``("loop", {"body", "consts", "carry", "length", "reverse", "save"})`` (a scan:
            operands consts, carries, xs; outputs carries, ys, saved carries) or
            ``("while", {"cond", "body", "cond_consts", "body_consts"})`` (operands the two
            graphs' consts then the carries; outputs the carries and the trip count): graphs
            the tier runs as compiled loops. An operand's ``dtype`` may be an integer or bool
            one (the tier holds those as float64).
            ``None`` (default): a graph using the primitive keeps the other tiers.
        zero_cotangents: with ``multiple_results``, ``"symbolic"``: the vjp rule accepts
            ``None`` for the cotangent of an output nobody reads (zero), so reverse mode does
            not allocate zeros for it (a loop's saved carries). ``"zeros"`` (default): the
            rule receives arrays of zeros.
        inplace: a function ``inplace(*args, out=buf, **params)`` returning exactly what
            ``impl(*args, **params)`` returns (same values, dtype and precision), computed into
            ``buf`` (an array of the result's shape and dtype that the caller gives up) or into
            a fresh array. The NumPy executor passes the buffer of an operand whose value dies
            at this node, as NumPy's temporary elision does for operators. ``None`` (default):
            ``impl`` itself when it is a NumPy ufunc, else nothing is computed in place.
        prune_outputs: with ``multiple_results``, how dead-code elimination drops unused
            outputs: ``prune(args, params, used) -> (operands, params, kept) | None`` given
            the node's operands, params and a bool per output; the rebuilt node applies the
            same primitive to the operands at positions ``operands`` with the new params and
            returns the outputs at positions ``kept`` (a superset of the used ones), in order.
            ``None`` (default, or returned): all outputs stay.

    Attributes besides the arguments: ``jvp_per_arg`` and ``vjp_per_arg`` tell which form the
    rules have; ``keep_plan`` (``None`` or indexable by the bit mask of the differentiated
    arguments) gives ``(keep, keep_out)``: ``keep`` is ``None`` (keep all) or an entry per
    argument (zipped with the arguments; for any number of operands it goes on with ``True``
    after the last differentiated one), ``True`` (keep its value), ``False`` (``None`` in its
    place) or :data:`SHAPE_ONLY` (a :class:`ShapeOnly` in its place), and ``keep_out`` whether
    to keep the output. ``keep1`` and ``keep2`` unroll it for the reverse trace's straight-line
    paths, applications to one or two operands without params: ``keep1`` is ``(keep0,
    keep_out)``, ``keep2[mask]`` is ``(keep0, keep1, keep_out)``; ``None`` where the general
    path is taken (not differentiable, several results, one vjp function, a variadic plan, or
    another number of operands).

    Rules are written with diffprog operations, so a backward pass run under an outer
    transform is itself traced (the extended graph), and derivatives of any order follow.

    Example:
        >>> import numpy as np
        >>> double = Primitive("double_example", lambda x: 2 * x, linear=True, register=False,
        ...                    transpose=(lambda ct, out, x: double(ct),))
        >>> double.vjp[0](np.ones(2), None, None), double.keep_plan[1]
        (array([2., 2.]), ((2,), False))
    """

    __slots__ = ("name", "impl", "jvp", "vjp", "jvp_per_arg", "vjp_per_arg", "differentiable",
                 "multiple_results", "composite", "transparent", "abstract", "scalar",
                 "scalar_fast", "scalar_fast_domain",
                 "rule_scalar",
                 "identity", "involution", "collapse", "keep_plan", "linear", "transpose",
                 "vjp_reads", "batch", "_linear_args", "_passes", "program_form",
                 "zero_cotangents", "prune_outputs", "inplace", "keep1", "keep2",
                 "__weakref__")

    def __init__(self, name: str, impl: Callable, *, jvp: Any = None, vjp: Any = None,
                 linear: bool | tuple[int, ...] = False, transpose: Any = None,
                 differentiable: bool = True, multiple_results: bool = False,
                 composite: bool = False, transparent: bool = False,
                 abstract: Callable | None = None, scalar: Callable | None = None,
                 scalar_fast: str | None = None, scalar_fast_domain: str | None = None,
                 rule_scalar: tuple[str | None, ...] | None = None,
                 identity: dict[int, Any] | None = None, involution: bool = False,
                 collapse: bool = False, vjp_reads: tuple | None = None,
                 register: bool = True, batch: str | Callable | None = None,
                 program_form: Callable | None = None, zero_cotangents: str = "zeros",
                 prune_outputs: Callable | None = None,
                 inplace: Callable | None = None, transpose_reads_shapes: bool = True) -> None:
        _check_declaration(name, impl, jvp, vjp, linear, transpose, differentiable,
                           composite, transparent, vjp_reads)
        if not transpose_reads_shapes and not isinstance(transpose, tuple):
            raise ValueError(f"primitive {name!r}: transpose_reads_shapes=False is declared "
                             "with a tuple of transposes (linear=...) only")
        _check_batch(name, batch, composite)
        self.name = name
        self.impl = impl
        self.linear = linear
        self.transpose = transpose
        self._linear_args: frozenset | None = None  # positions of a per-operand linear one
        # positions whose tangent, alone, is the output tangent (the others' zeros are
        # identities, as in x + 0): the linear jvp returns it without adding zeros
        self._passes = frozenset(i for i in range(2) if identity and all(
            identity.get(j, None) == 0 for j in range(2) if j != i)) if linear is True \
            else frozenset()
        if linear is not False:
            jvp, vjp, vjp_reads = _derive_linear(self, linear, transpose, multiple_results)
        self.jvp = jvp
        self.vjp = vjp
        self.jvp_per_arg = isinstance(jvp, tuple)
        self.vjp_per_arg = isinstance(vjp, (tuple, _PerPosition))
        self.differentiable = differentiable
        self.multiple_results = multiple_results
        self.composite = composite
        self.transparent = transparent
        self.abstract = abstract
        self.identity = identity
        self.involution = involution
        self.collapse = collapse
        self.vjp_reads = vjp_reads
        if isinstance(vjp_reads, _KeepPlan):  # variadic linear: planned per mask on first use
            self.keep_plan = vjp_reads
            self.vjp_reads = None
        else:
            self.keep_plan = None if vjp_reads is None else _keep_plan(
                vjp_reads, shapes=linear is not False and transpose_reads_shapes,
                outputs=multiple_results)
        self.keep1, self.keep2 = _unrolled_plans(self)
        self.scalar = scalar
        self.scalar_fast = scalar_fast
        self.scalar_fast_domain = scalar_fast_domain
        self.rule_scalar = rule_scalar
        self.batch = batch
        self.program_form = program_form
        self.zero_cotangents = zero_cotangents
        self.prune_outputs = prune_outputs
        # a ufunc takes out= and computes the same loop into it when out has the result's dtype
        self.inplace = inplace if inplace is not None else (
            impl if isinstance(impl, np.ufunc) and not multiple_results else None)
        if register:
            if name in primitives:
                raise ValueError(f"a primitive named {name!r} is already declared")
            primitives[name] = self

    def __call__(self, *args: Any, **params: Any) -> Any:
        # bind, inlined for the common case of plain operands (vjp rules run on arrays in a
        # first-order backward pass): no tracer among them means the NumPy implementation.
        for a in args:
            if isinstance(a, Tracer):
                return bind(self, *args, **params)
        out = self.impl(*args, **params)
        if DEBUG_NANS:
            check_nans(self, args, out, "forward")
        return out

    def __repr__(self) -> str:
        return f"Primitive({self.name})"

    def jvp_rule(self, tangents: Sequence[Any], out: Any, args: Sequence[Any],
                 params: dict) -> Any:
        """Output tangent for ``tangents`` (``None`` = zero); ``None`` when all are zero."""
        if self.jvp is None:
            raise NotImplementedError(f"primitive {self.name!r} has no jvp rule yet")
        if not self.jvp_per_arg:
            return self.jvp(tangents, out, *args, **params)
        total = None
        rules = self.jvp
        for i, t in enumerate(tangents):
            if t is not None:
                contribution = rules[i](t, out, *args, **params)
                total = contribution if total is None else self._sum(total, contribution)
        return total

    def _sum(self, a: Any, b: Any) -> Any:
        if self.multiple_results:
            return tuple(x if y is None else y if x is None else x + y for x, y in zip(a, b))
        return a + b


def _unrolled_plans(prim: Primitive) -> tuple[tuple | None, tuple | None]:
    """``(keep1, keep2)`` of ``prim`` (see :class:`Primitive`): its keep plan for one and for
    two operands, unrolled, where the reverse trace's straight-line paths apply."""
    if not prim.differentiable or prim.multiple_results or not prim.vjp_per_arg:
        return None, None
    plan = prim.keep_plan
    if plan is None:  # keep everything, for any number of operands
        every = (True, True, True)
        return (True, True), (None, every, every, every)
    if type(plan) is not tuple:  # a _KeepPlan: any number of operands, planned per mask
        return None, None
    if len(plan) == 2:
        keep, keep_out = plan[1]
        return (True if keep is None else keep[0], keep_out), None
    if len(plan) == 4:
        return None, (None,) + tuple((True, True, keep_out) if keep is None else
                                     (keep[0], keep[1], keep_out)
                                     for keep, keep_out in plan[1:])
    return None, None


# -- declaration checks ----------------------------------------------------------------------

def _check_declaration(name: Any, impl: Any, jvp: Any, vjp: Any, linear: Any, transpose: Any,
                       differentiable: bool, composite: bool, transparent: bool,
                       vjp_reads: Any) -> None:
    """Reject option combinations that would fail later (often deep inside a grad)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"Primitive: the name must be a non-empty string, got {name!r}")

    def fail(msg: str) -> None:
        raise ValueError(f"primitive {name!r}: {msg}")

    if not callable(impl):
        fail(f"impl must be callable, got {type(impl).__name__}")
    if transparent and not composite:
        fail("transparent=True requires composite=True: a transparent impl runs on traced "
             "values, so it must be written with diffprog operations")
    if not differentiable:
        given = [k for k, v in (("jvp", jvp), ("vjp", vjp), ("transpose", transpose),
                                ("vjp_reads", vjp_reads)) if v is not None]
        if linear is not False:
            given.insert(0, "linear")
        if given:
            fail(f"differentiable=False declares no derivative, but {', '.join(given)} "
                 f"{'is' if len(given) == 1 else 'are'} given; drop "
                 f"{'it' if len(given) == 1 else 'them'} or differentiable=False")
        return
    for kind, rule in (("jvp", jvp), ("vjp", vjp)):
        if isinstance(rule, tuple):
            bad = [i for i, r in enumerate(rule) if not callable(r)]
            if bad:
                fail(f"{kind} rule {bad[0]} is not callable ({rule[bad[0]]!r})")
        elif rule is not None and not callable(rule):
            fail(f"{kind} must be a tuple of per-argument rules or one function, got "
                 f"{type(rule).__name__}")
    if linear is not False:
        if linear is not True and not (isinstance(linear, tuple) and linear and all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in linear)
                and len(set(linear)) == len(linear)):
            fail(f"linear must be True or a non-empty tuple of distinct argument positions, "
                 f"got {linear!r}")
        if jvp is not None or vjp is not None:
            fail("a linear primitive's jvp and vjp are derived from its transpose; give "
                 "transpose= only (not jvp= or vjp=), or drop linear to give both rules")
        if vjp_reads is not None:
            fail("a linear primitive's vjp_reads are derived (its transposes read the other "
                 "operands, never the output or their own operand); drop vjp_reads")
        if transpose is None:
            fail("linear=... needs transpose=: the transpose rules the jvp and vjp are "
                 "derived from")
        if isinstance(transpose, tuple):
            for i, rule in enumerate(transpose):
                inside = linear is True or i in linear
                if inside and not callable(rule):
                    fail(f"transpose rule {i} must be callable, got {rule!r}")
                if not inside and rule is not None:
                    fail(f"transpose rule {i} is given, but argument {i} is not among the "
                         f"linear positions {linear}: give None there")
            if linear is not True and max(linear) >= len(transpose):
                fail(f"linear names argument {max(linear)} but transpose has rules for "
                     f"{len(transpose)} arguments")
        elif not callable(transpose):
            fail("transpose must be a tuple of per-argument rules or one function "
                 f"rule(k, ct, out, *args, **params), got {type(transpose).__name__}")
        return
    if transpose is not None:
        fail("transpose= is only used with linear=True (or a tuple of linear positions); "
             "declare linear, or give the rules as jvp= and vjp=")
    if vjp_reads is not None:
        if not isinstance(vjp_reads, tuple) or not all(
                isinstance(r, tuple) and all(isinstance(k, int) and not isinstance(k, bool)
                                             for k in r) for r in vjp_reads):
            fail(f"vjp_reads must be a tuple with one tuple of ints per argument, got "
                 f"{vjp_reads!r}")
        n = len(vjp_reads)
        for j, r in enumerate(vjp_reads):
            for k in r:
                if not -1 <= k < n:
                    fail(f"vjp_reads[{j}] names {k}, but the primitive has {n} arguments "
                         f"(valid: -1 for the output, 0..{n - 1})")
        for kind, rule in (("jvp", jvp), ("vjp", vjp)):
            if isinstance(rule, tuple) and len(rule) != n:
                fail(f"vjp_reads describes {n} arguments but the {kind} has "
                     f"{len(rule)} per-argument rules")
        if n > _MAX_PLANNED:
            fail(f"vjp_reads for {n} arguments: at most {_MAX_PLANNED} are planned")
    if isinstance(jvp, tuple) and isinstance(vjp, tuple) and len(jvp) != len(vjp):
        fail(f"the jvp has {len(jvp)} per-argument rules but the vjp has {len(vjp)}")


BATCH_KINDS = ("elementwise", "inline")  # the named batching rules (Primitive.batch)


def _check_batch(name: str, batch: Any, composite: bool) -> None:
    """A batching rule is None, one of :data:`BATCH_KINDS`, or a function."""
    if batch is None or callable(batch):
        return
    if batch not in BATCH_KINDS:
        raise ValueError(f"primitive {name!r}: batch must be None, a function "
                         f"rule(args, dims, **params) or one of {BATCH_KINDS}, got {batch!r}")
    if batch == "inline" and not composite:
        raise ValueError(f"primitive {name!r}: batch='inline' runs impl on batched traced "
                         "values, so it requires composite=True (an impl written with "
                         "diffprog operations)")


# -- linear primitives: rules derived from the transpose --------------------------------------

SHAPE_ONLY = 2  # a keep-plan entry: keep the argument's shape and dtype (a ShapeOnly) only
_MAX_PLANNED = 8  # keep plans are tables of 2**n entries up to this many arguments


class _PerPosition:
    """The vjp of a linear primitive with any number of operands: ``vjp[k]`` is its one
    transpose rule ``rule(k, ct, out, *args)`` bound to position ``k`` (made on first use)."""

    __slots__ = ("rule", "bound", "positions", "name")

    def __init__(self, rule: Callable, positions: frozenset | None, name: str) -> None:
        self.rule = rule
        self.bound: dict[int, Callable] = {}
        self.positions = positions  # None: every position is linear
        self.name = name

    def __getitem__(self, k: int) -> Callable:
        rule = self.bound.get(k)
        if rule is None:
            if self.positions is None or k in self.positions:
                rule = functools.partial(self.rule, k)
            else:
                rule = functools.partial(_no_derivative, self.name, k)
            self.bound[k] = rule
        return rule


def _no_derivative(name: str, k: int, *args: Any, **params: Any) -> Any:
    raise TypeError(f"primitive {name!r} is not differentiable in its argument {k} (it is "
                    "linear only in the others, and this one is an index or a constant)")


class _KeepPlan(dict):
    """The keep plan of a primitive with any number of operands: an entry per mask of the
    differentiated arguments, computed on first use."""

    __slots__ = ("entry",)

    def __init__(self, entry: Callable[[int], tuple]) -> None:
        super().__init__()
        self.entry = entry

    def __missing__(self, mask: int) -> tuple:
        plan = self.entry(mask)
        if len(self) < 4096:  # masks seen in practice are few; never grow without bound
            self[mask] = plan
        return plan


class _KeepRest(tuple):
    """Keep entries for the first arguments; every argument after them is kept (constants)."""

    __slots__ = ()

    def __iter__(self):
        return itertools.chain(tuple.__iter__(self), itertools.repeat(True))


def _jointly_linear_entry(multiple_results: bool, mask: int) -> tuple:
    keep = _KeepRest(SHAPE_ONLY if mask >> k & 1 else True for k in range(mask.bit_length()))
    return keep, multiple_results


def _each_linear_entry(multiple_results: bool, mask: int) -> tuple:
    # The transpose of one operand reads all the others: with two or more differentiated
    # operands every value is read; with one, only its shape.
    if mask & (mask - 1):
        return None, multiple_results
    return _jointly_linear_entry(multiple_results, mask)


def _derive_linear(prim: Primitive, linear: Any, transpose: Any,
                   multiple_results: bool) -> tuple:
    """``(jvp, vjp, vjp_reads)`` of a linear primitive, from its transposes. ``vjp_reads`` is
    a ready :class:`_KeepPlan` for a primitive with any number of operands."""
    if linear is not True:
        prim._linear_args = frozenset(linear)
    jvp = functools.partial(_linear_jvp, prim)
    if isinstance(transpose, tuple):
        n = len(transpose)
        vjp = tuple(rule if rule is not None else functools.partial(_no_derivative, prim.name, i)
                    for i, rule in enumerate(transpose))
        if linear is True:
            reads: Any = ((),) * n
        else:
            reads = tuple(tuple(j for j in range(n) if j != i) if i in linear else ()
                          for i in range(n))
        if n > _MAX_PLANNED:
            entry = _jointly_linear_entry if linear is True else _each_linear_entry
            reads = _KeepPlan(functools.partial(entry, multiple_results))
        return jvp, vjp, reads
    vjp = _PerPosition(transpose, prim._linear_args, prim.name)
    entry = _jointly_linear_entry if linear is True else _each_linear_entry
    return jvp, vjp, _KeepPlan(functools.partial(entry, multiple_results))


def _zero_like(x: Any, elementwise: bool) -> Any:
    """A zero tangent for the argument ``x``. For an elementwise primitive a Python ``0.0``:
    its traced operands have the output's shape, so the tangents present give the shape, and a
    weakly typed zero promotes nothing (``1.0 - x`` keeps float32). Otherwise zeros of ``x``'s
    shape and dtype."""
    if elementwise or isinstance(x, (bool, int, float, complex)):
        return 0.0
    return instantiate_zeros(x)


def _linear_jvp(prim: Primitive, tangents: Sequence[Any], out: Any, *args: Any,
                **params: Any) -> Any:
    """The jvp of a linear primitive: the primitive itself, applied to the tangents."""
    n = len(tangents)
    if n == 1:  # the common case: reshape, sum, neg, ...
        t = tangents[0]
        return None if t is None else bind(prim, t, **params)
    if prim.linear is not True:  # multilinear: the tangent in each operand's place in turn
        if n == 2:  # mul, matmul: no loop
            t0, t1 = tangents
            if t1 is None or t0 is None:
                i, t = (0, t0) if t1 is None else (1, t1)
                if t is None:
                    return None
                if i not in prim._linear_args:
                    _no_derivative(prim.name, i)
                return bind(prim, t, args[1], **params) if i == 0 else \
                    bind(prim, args[0], t, **params)
        total = None
        for i, t in enumerate(tangents):
            if t is None:
                continue
            if i not in prim._linear_args:
                _no_derivative(prim.name, i)
            operands = list(args)
            operands[i] = t
            contribution = bind(prim, *operands, **params)
            total = contribution if total is None else prim._sum(total, contribution)
        return total
    if n == 2:  # add, sub: no loop
        t0, t1 = tangents
        if t0 is not None and t1 is not None:
            return bind(prim, t0, t1, **params)
        i, t = (0, t0) if t1 is None else (1, t1)
        if t is None:
            return None
        # x + 0 is x: no zero operand and no addition, when the tangent already has the
        # output's shape and dtype
        if i in prim._passes and getattr(t, "shape", None) == getattr(out, "shape", ()) and \
                getattr(t, "dtype", None) == getattr(out, "dtype", None):
            return t
        zero = _zero_like(args[1 - i], prim.scalar is not None)
        return bind(prim, t, zero, **params) if i == 0 else bind(prim, zero, t, **params)
    if all(t is None for t in tangents):
        return None
    elementwise = prim.scalar is not None
    return bind(prim, *[_zero_like(a, elementwise) if t is None else t
                        for t, a in zip(tangents, args)], **params)


def _keep_plan(reads: tuple, shapes: bool = False, outputs: bool = False) -> tuple:
    """For each mask of differentiated arguments: which arguments (None: all) and whether the
    output the reverse trace must keep for the vjp rules of those arguments.

    A differentiated argument no rule reads is dropped, or with ``shapes`` kept as its shape
    and dtype (:data:`SHAPE_ONLY`). ``outputs``: always keep the output (multiple results).
    """
    n = len(reads)
    drop = SHAPE_ONLY if shapes else False
    plan = []
    for mask in range(1 << n):
        # constants are kept: replay reads them
        keep: list[Any] = [drop if mask >> k & 1 else True for k in range(n)]
        keep_out = outputs
        for j in range(n):
            if mask >> j & 1:
                for r in reads[j]:
                    if r == -1:
                        keep_out = True
                    else:
                        keep[r] = True
        plan.append((None if all(k is True for k in keep) else tuple(keep), keep_out))
    return tuple(plan)


# -- eager kernels for large elementwise operands ----------------------------------------------
# diffprog/__init__.py registers the provider (diffprog.kernels.eager_fast, which loads numba in
# a background thread on its first large call): core and prims sit below the kernels and never
# import them. The elementwise primitives with fast forms compare an operand's size with
# EAGER_MIN_SIZE (the smallest of the provider's per-dtype thresholds) and, above it, ask the
# provider; that one comparison is all that small arrays pay. A primitive's forward hook (an impl
# that asks the provider) is installed only while the provider says it can run that impl as a
# kernel: elsewhere impl is NumPy's own function, with no wrapper at all.
EAGER_MIN_SIZE = sys.maxsize
_eager_provider: Callable | None = None
_eager_registered: tuple = (None, 0)   # what set_eager_provider was given
_eager_on = [True]                     # config.eager_kernels
_eager_impls: dict = {}                # Primitive -> (NumPy's impl, the impl with the hook)


def set_eager_provider(provider: Callable | None, min_size: int = 0) -> None:
    """Register ``provider(prim, i, t, out, args)`` -> an array or ``None`` (NumPy runs): the
    result of ``prim``'s impl (``i = -1``) or of its elementwise rule ``i`` (``prim.rule_scalar``)
    for operands of at least ``min_size`` elements. ``None`` turns the eager kernels off.
    If the provider has an attribute ``runs_impl(prim) -> bool``, the forward hooks declared
    with :func:`eager_impl` are installed only on the primitives for which it is true.

    Example:
        >>> import diffprog.core as core
        >>> previous = core._eager_provider, core.EAGER_MIN_SIZE
        >>> core.set_eager_provider(None)  # every call through NumPy, no size comparison
        >>> core.EAGER_MIN_SIZE == sys.maxsize
        True
        >>> core.set_eager_provider(*previous)
    """
    global _eager_registered
    _eager_registered = (provider, min_size)
    _install_eager()


def set_eager_enabled(on: bool) -> None:
    """``config.eager_kernels``: off, every call runs NumPy (no hook, no size comparison)
    whatever provider is registered; on again, the registered provider is back."""
    _eager_on[0] = bool(on)
    _install_eager()


def eager_impl(prim: Primitive, hooked: Callable) -> None:
    """Declare ``hooked``, an impl of ``prim`` that asks the provider for large operands: it
    replaces ``prim.impl`` (NumPy's) while a provider that can run ``prim``'s impl is on."""
    _eager_impls[prim] = (prim.impl, hooked)
    _install_eager()


def _install_eager() -> None:
    global _eager_provider, EAGER_MIN_SIZE
    provider, min_size = _eager_registered if _eager_on[0] else (None, 0)
    runs_impl = getattr(provider, "runs_impl", None)
    for prim, (plain, hooked) in list(_eager_impls.items()):
        use = provider is not None and (runs_impl is None or runs_impl(prim))
        prim.impl = hooked if use else plain
    _eager_provider = provider
    EAGER_MIN_SIZE = sys.maxsize if provider is None else max(int(min_size), 1)


def eager(prim: Primitive, i: int, t: Any, out: Any, args: tuple) -> Any:
    """The registered provider's result for a large call (see :func:`set_eager_provider`),
    or ``None``: the caller runs NumPy."""
    provider = _eager_provider
    return None if provider is None else provider(prim, i, t, out, args)


def bind(prim: Primitive, *args: Any, **params: Any) -> Any:
    """Apply ``prim`` to ``args``: the one interception point of every transform.

    Example:
        >>> import numpy as np
        >>> from diffprog.prims.elementwise import sin
        >>> float(bind(sin, np.float64(0.0)))
        0.0
    """
    top = None
    for a in args:
        if isinstance(a, Tracer):
            t = a._trace
            if top is None or t.level > top.level:
                top = t
    if top is None:
        out = prim.impl(*args, **params)
        if DEBUG_NANS:
            check_nans(prim, args, out, "forward")
        return out
    if not top.alive:
        raise _escaped(top)
    return top.process(prim, args, params)


def bind1(prim: Primitive, x: Any) -> Any:
    """``bind(prim, x)`` for a primitive applied without params: the same result, reached
    without an argument tuple and a keyword dict (diffprog.numpy's unary functions).

    Example:
        >>> from diffprog.prims.elementwise import sin
        >>> float(bind1(sin, np.float64(0.0)))
        0.0
    """
    if isinstance(x, Tracer):
        return x._trace.process1(prim, x)
    out = prim.impl(x)
    if DEBUG_NANS:
        check_nans(prim, (x,), out, "forward")
    return out


def bind2(prim: Primitive, x: Any, y: Any) -> Any:
    """``bind(prim, x, y)`` for a primitive applied without params (diffprog.numpy's binary
    functions and operators): the same result, without an argument tuple and a keyword dict.

    Example:
        >>> from diffprog.prims.elementwise import mul
        >>> float(bind2(mul, np.float64(2.0), 3.0))
        6.0
    """
    if isinstance(x, Tracer):
        top = x._trace
        if isinstance(y, Tracer):
            other = y._trace
            if other.level > top.level:
                top = other
    elif isinstance(y, Tracer):
        top = y._trace
    else:
        out = prim.impl(x, y)
        if DEBUG_NANS:
            check_nans(prim, (x, y), out, "forward")
        return out
    return top.process2(prim, x, y)


# True when NaN debugging is on anywhere: process-wide (config.debug_nans) or in some thread
# (the debug_nans() context manager). A module global, so that when it is off the hot paths pay
# one global lookup and nothing else; when it is on, check_nans asks debug_nans_enabled()
# whether it is on for the calling thread.
DEBUG_NANS = False
_nan_global = False
_nan_local = _thread_local()
_nan_threads = 0  # threads inside a debug_nans() block that turned it on
_nan_lock = allocate_lock()


def debug_nans_enabled() -> bool:
    """Is NaN debugging on for the calling thread?"""
    local = getattr(_nan_local, "value", None)
    return _nan_global if local is None else local


def set_debug_nans(value: bool) -> None:
    """Turn NaN debugging on or off for the whole process (config.debug_nans)."""
    global _nan_global, DEBUG_NANS
    _nan_global = bool(value)
    DEBUG_NANS = _nan_global or _nan_threads > 0


def push_debug_nans(value: bool | None) -> bool | None:
    """Set the calling thread's NaN debugging (None: follow the process); returns the previous
    setting for :func:`push_debug_nans` to restore."""
    global _nan_threads, DEBUG_NANS
    previous = getattr(_nan_local, "value", None)
    with _nan_lock:
        _nan_threads += (value is True) - (previous is True)
        _nan_local.value = value
        DEBUG_NANS = _nan_global or _nan_threads > 0
    return previous


def _has_nan(x: Any) -> bool:
    x = concrete(x)
    if not isinstance(x, (np.ndarray, np.generic, float, complex)):
        return False
    return bool(np.isnan(x).any())


class NanError(FloatingPointError):
    """Raised under ``debug_nans`` at the first primitive that makes a NaN from non-NaN inputs."""


def check_nans(prim: Primitive, args: Sequence[Any], out: Any, phase: str,
               where: str | None = None) -> None:
    """Raise NanError if ``out`` has a NaN that none of ``args`` had (debug_nans mode)."""
    if not debug_nans_enabled():
        return
    outs = out if isinstance(out, tuple) else (out,)
    if not any(_has_nan(o) for o in outs) or any(_has_nan(a) for a in args):
        return
    shapes = ", ".join(f"{getattr(concrete(a), 'dtype', type(a).__name__)}"
                       f"{list(getattr(concrete(a), 'shape', ()))}" for a in args)
    raise NanError(
        f"debug_nans: primitive {prim.name!r} produced NaN from inputs without NaN, in the "
        f"{phase} pass, at {where or _user_frame(1)} (inputs: {shapes}). A common cause in the "
        "backward pass is a branch masked by where(): compute the unsafe function on a safe "
        "input, e.g. where(x > 0, log(where(x > 0, x, 1.0)), 0.0).")


def _escaped(trace: Trace) -> Exception:
    return RuntimeError(
        f"a traced value escaped from {trace.name}: it was created by the {trace.name} "
        f"transform started at {trace.where}, and that transform has finished. Values traced "
        "inside a transformed function are only valid while it runs; return them from the "
        "function (as an output or as aux) instead of storing them outside.")


class Trace:
    """One running transform. Subclasses implement ``process(prim, args, params)``."""

    __slots__ = ("level", "alive", "name", "where")
    #: Does this trace compute derivatives? jit's does not: custom rules and checkpoints mean
    #: nothing to it, so their functions run inline, as plain diffprog code.
    differentiates = True

    def __init__(self, name: str) -> None:
        self.level = next(_levels)
        self.alive = True
        self.name = name
        self.where = _user_frame()

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        raise NotImplementedError

    def process1(self, prim: Primitive, x: Any) -> Any:
        """``bind(prim, x)`` where ``x`` is a tracer of this trace: :func:`bind1` calls it, and
        so may code that knows it. A trace may override it with a faster path giving the same
        result, which must check ``alive`` as bind does."""
        if not self.alive:
            raise _escaped(self)
        return self.process(prim, (x,), {})

    def process2(self, prim: Primitive, x: Any, y: Any) -> Any:
        """``bind(prim, x, y)`` where this trace is the highest among the operands' (see
        :meth:`process1`)."""
        if not self.alive:
            raise _escaped(self)
        return self.process(prim, (x, y), {})

    def own(self, x: Any) -> bool:
        """Is ``x`` a tracer of this trace?"""
        return isinstance(x, Tracer) and x._trace is self


def _user_frame(depth: int = 2) -> str:
    """``file:line`` of the first frame outside diffprog, for error messages."""
    f = sys._getframe(depth)
    while f is not None and f.f_globals.get("__name__", "").startswith("diffprog"):
        f = f.f_back
    return "<unknown>" if f is None else f"{f.f_code.co_filename}:{f.f_lineno}"


_CONVERT_MSG = (
    "{what} of a traced value: this would drop its derivative. Keep the value as an array "
    "inside the function (diffprog.numpy or NumPy functions work on it); for control flow on "
    "a traced value use a comparison like `if x > 0`, or dnp.where for elementwise choices. "
    "If the derivative really should be dropped, use diffprog.stop_gradient.")


class _Shaped:
    """``ndim`` and ``size`` from ``shape``, for traced and abstract values alike."""

    __slots__ = ()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


class Tracer(_Shaped):
    """A value being traced by a transform. Behaves like a NumPy array.

    Subclasses keep the primal value in ``primal``; its shape and dtype are the tracer's.
    Operators and array methods are attached by :mod:`diffprog.numpy`.
    """

    __slots__ = ("_trace",)
    __array_priority__ = 1000

    @property
    def shape(self) -> tuple:
        return self.primal.shape

    @property
    def dtype(self) -> np.dtype:
        return self.primal.dtype

    @property
    def weak_type(self) -> bool:
        """Is this the traced value of a Python scalar (see :class:`ShapedArray`)?"""
        return getattr(concrete(self), "weak_type", False)


    def __len__(self) -> int:
        shape = self.shape
        if not shape:
            raise TypeError("len() of a 0-d traced value")
        return shape[0]

    def __bool__(self) -> bool:
        # Python control flow on concrete traced values is allowed: the branch taken is part of
        # the function being differentiated, exactly as NumPy would evaluate it.
        return bool(concrete(self))

    def __float__(self) -> float:
        raise TypeError(_CONVERT_MSG.format(what="float()"))

    def __int__(self) -> int:
        raise TypeError(_CONVERT_MSG.format(what="int()"))

    def __complex__(self) -> complex:
        raise TypeError(_CONVERT_MSG.format(what="complex()"))

    def __index__(self) -> int:
        raise TypeError(_CONVERT_MSG.format(what="Using as an index"))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(_CONVERT_MSG.format(
            what="np.asarray() (or another conversion to a NumPy array, such as np.array([x, y]) "
                 "of a list holding traced values)")
            + " To build an array from traced values use dnp.array([x, y]) or dnp.stack([x, y]).")

    def __setitem__(self, idx: Any, value: Any) -> None:
        raise TypeError(
            "traced arrays are immutable: `x[idx] = v` would change a value the derivative "
            "depends on. Use the functional form `x = x.at[idx].set(v)` (or .add/.multiply/"
            ".min/.max(v); "
            "`dnp.at(x)[idx].set(v)` works on plain arrays too), or build the result with "
            "dnp.where.")

    def __iter__(self):
        shape = self.shape
        if not shape:
            raise TypeError("iteration over a 0-d traced value")
        return (self[i] for i in range(shape[0]))

    def __repr__(self) -> str:
        return f"{type(self).__name__}<{self._trace.name}>({self.primal!r})"

    def __hash__(self) -> int:
        # like ndarray: == is elementwise, so a traced value cannot be a dict key or set member
        raise TypeError(
            "traced values are not hashable, like NumPy arrays (== is elementwise); key dicts "
            "and sets by something static instead (a name, an index, or id(x))")


# ----------------------------------------------------------------------------------------------
# Abstract values: what jit traces with, and what primitives' abstract rules return


class ConcretizationError(TypeError):
    """A value traced by jit was used where a concrete value is needed."""


def _concretization(what: str) -> ConcretizationError:
    return ConcretizationError(
        f"{what} of a value traced by jit: under jit only the shape and dtype of a value are "
        "known, so Python control flow and conversions cannot depend on its contents. Either "
        "mark the argument static, `jit(f, static_argnums=(i,))` (one compilation per value), "
        "or compute both branches and choose elementwise with `dnp.where(cond, a, b)`.")


class _NoValue:
    """Conversions that need a value raise: under jit there is only shape and dtype."""

    __slots__ = ()

    def __float__(self) -> float:
        raise _concretization("float()")

    def __int__(self) -> int:
        raise _concretization("int()")

    def __index__(self) -> int:
        raise _concretization("Using as an index")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise _concretization("np.asarray()")


class ShapedArray(_NoValue, _Shaped):
    """An abstract array: shape and dtype, no values. What jit traces with.

    ``weak_type`` marks the abstract value of a Python scalar (or a result computed only from
    such values): it adopts the dtype of the arrays it is combined with.

    Example:
        >>> ShapedArray((2, 3), np.float32)
        float32[2,3]
    """

    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape: Sequence[int], dtype: Any, weak_type: bool = False) -> None:
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        # A Python scalar argument: like NumPy 2 (and JAX) it takes the dtype of the arrays it
        # meets instead of promoting them (float32 array * 2.0 stays float32).
        self.weak_type = weak_type


    def __repr__(self) -> str:
        return f"{self.dtype.name}[{','.join(str(d) for d in self.shape)}]"

    def __bool__(self) -> bool:
        raise _concretization("bool() (an `if`, `while`, `and`/`or` or assert)")


class ShapeOnly(ShapedArray):
    """What the reverse trace keeps of an argument whose vjp rules read only its shape and
    dtype (the operand of a linear primitive): the value itself is freed after the forward pass.

    Example:
        >>> shape_only(np.ones((2, 3), np.float32)).shape
        (2, 3)
    """

    __slots__ = ()

    def _value(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"a vjp rule used the value of an argument ({self!r}) that its primitive's "
            "vjp_reads (or, for a linear primitive, its transposes) declare as read only for "
            "its shape and dtype: list the argument in vjp_reads, or use only .shape/.dtype")

    __array__ = __float__ = __int__ = __index__ = __bool__ = _value


def shape_only(x: Any) -> ShapeOnly:
    """The shape and dtype of ``x`` (an array or a traced value), without its value."""
    s = object.__new__(ShapeOnly)
    s.shape = x.shape
    s.dtype = x.dtype
    return s


def instantiate_zeros(x: Any) -> np.ndarray:
    """A writable array of zeros with the shape and dtype of ``x`` (an array, a tracer, an
    abstract value or a Python scalar): the one way transforms make an explicit zero.

    Example:
        >>> instantiate_zeros(np.ones((2,), np.float32))
        array([0., 0.], dtype=float32)
    """
    if isinstance(x, (np.ndarray, np.generic, Tracer, ShapedArray)):
        return np.zeros(x.shape, x.dtype)
    return np.zeros(np.shape(x), np.result_type(x))


def concrete(x: Any) -> Any:
    """The concrete value under any number of tracers (used for Python control flow)."""
    while isinstance(x, Tracer):
        x = x.primal
    return x
