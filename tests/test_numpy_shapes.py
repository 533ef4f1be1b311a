"""Shape manipulation, data movement and indexing in diffprog.numpy: one table of functions
checked with check_grads in both modes to order 2 over shapes and dtypes, values against NumPy,
and explicit tests of gather adjoints, functional updates, masks and NumPy dispatch."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.numpy import _indexing

RNG = np.random.default_rng(0)
DTYPES = [np.float64, np.float32]


def real(shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def tol_for(dtype):
    return {} if dtype == np.float64 else {"atol": 3e-3, "rtol": 3e-3}


I2 = np.array([[0, 2], [2, 2]])
MASK23 = np.array([[True, False, True], [False, True, True]])
ORDER23 = np.array([[2, 0, 1], [1, 2, 0]])

# name, function, argument shapes (one tuple per variant)
TABLE = [
    # reshaping and axes
    ("reshape", lambda x: dnp.reshape(x, (-1,)), [((),), ((3,),), ((2, 3),), ((0, 3),)]),
    ("reshape_2d", lambda x: dnp.reshape(x, (3, 2)), [((2, 3),), ((6,),)]),
    ("reshape_F", lambda x: dnp.reshape(x, (3, -1), order="F"), [((2, 3),)]),
    ("ravel", dnp.ravel, [((),), ((2, 3),)]),
    ("ravel_F", lambda x: dnp.ravel(x, order="F"), [((2, 3),)]),
    ("transpose", dnp.transpose, [((),), ((3,),), ((2, 3),), ((2, 3, 4),)]),
    ("transpose_axes", lambda x: dnp.transpose(x, (-1, 0, 1)), [((2, 3, 4),)]),
    ("permute_dims", lambda x: dnp.permute_dims(x, (1, 2, 0)), [((2, 3, 4),)]),
    ("matrix_transpose", dnp.matrix_transpose, [((2, 3),), ((2, 3, 4),)]),
    ("moveaxis", lambda x: dnp.moveaxis(x, 0, -1), [((2, 3, 4),)]),
    ("moveaxis_tuple", lambda x: dnp.moveaxis(x, (0, 1), (2, 0)), [((2, 3, 4),)]),
    ("swapaxes", lambda x: dnp.swapaxes(x, 0, -1), [((2, 3, 4),), ((2, 3),)]),
    ("expand_dims", lambda x: dnp.expand_dims(x, 0), [((),), ((2, 3),)]),
    ("expand_dims_tuple", lambda x: dnp.expand_dims(x, (0, -1)), [((3,),), ((2, 3),)]),
    ("squeeze", dnp.squeeze, [((1, 3, 1),), ((1,),), ((2, 3),)]),
    ("squeeze_axis", lambda x: dnp.squeeze(x, (0, 2)), [((1, 3, 1),)]),
    ("broadcast_to", lambda x: dnp.broadcast_to(x, (2, 3)), [((),), ((3,),), ((2, 1),)]),
    ("broadcast_arrays", dnp.broadcast_arrays, [((2, 1), (3,)), ((), (2, 3))]),
    # joining and splitting
    ("concatenate", lambda x, y: dnp.concatenate([x, y]),
     [((2, 3), (1, 3)), ((3,), (2,)), ((0, 3), (2, 3)), ((0,), (0,))]),
    ("concatenate_axis1", lambda x, y: dnp.concatenate((x, y, x), axis=-1),
     [((2, 3), (2, 1))]),
    ("concatenate_none", lambda x, y: dnp.concatenate([x, y], axis=None),
     [((2, 3), (4,)), ((), (2,))]),
    ("concatenate_const", lambda x: dnp.concatenate([np.ones((1, 3)), x, [[1.0, 2.0, 3.0]]]),
     [((2, 3),)]),
    ("concatenate_rows", lambda x: dnp.concatenate(x, axis=1), [((2, 3, 4),)]),
    ("concat", lambda x, y: dnp.concat([x, y], axis=1), [((2, 3), (2, 2))]),
    ("stack", lambda x, y: dnp.stack([x, y]), [((), ()), ((3,), (3,)), ((2, 3), (2, 3))]),
    ("stack_axis", lambda x, y: dnp.stack((x, y), axis=-1), [((3,), (3,)), ((2, 3), (2, 3))]),
    ("stack_tracer", lambda x: dnp.stack(x, axis=1), [((2, 3),)]),
    ("hstack", lambda x, y: dnp.hstack([x, y]), [((3,), (2,)), ((2, 3), (2, 1)), ((), ())]),
    ("vstack", lambda x, y: dnp.vstack([x, y]), [((3,), (3,)), ((2, 3), (3,)), ((), ())]),
    ("dstack", lambda x, y: dnp.dstack([x, y]), [((3,), (3,)), ((2, 3), (2, 3))]),
    ("column_stack", lambda x, y: dnp.column_stack([x, y]), [((3,), (3,)), ((3, 2), (3,))]),
    ("append", lambda x, y: dnp.append(x, y), [((2, 3), (2,))]),
    ("append_axis", lambda x, y: dnp.append(x, y, axis=0), [((2, 3), (1, 3))]),
    ("split", lambda x: dnp.split(x, 3), [((6,),), ((3, 2),)]),
    ("split_indices", lambda x: dnp.split(x, [1, 3], axis=1), [((2, 4),)]),
    ("split_odd", lambda x: dnp.split(x, [3, 1, -1]), [((5,),)]),
    ("array_split", lambda x: dnp.array_split(x, 3), [((5,),), ((2,),)]),
    ("unstack", lambda x: dnp.unstack(x, axis=1), [((2, 3),)]),
    # repetition and reordering
    ("tile", lambda x: dnp.tile(x, 2), [((),), ((3,),), ((2, 3),)]),
    ("tile_tuple", lambda x: dnp.tile(x, (2, 1, 3)), [((3,),), ((2, 3),)]),
    ("tile_zero", lambda x: dnp.tile(x, (0, 2)), [((3,),)]),
    ("repeat", lambda x: dnp.repeat(x, 2), [((),), ((3,),), ((2, 3),)]),
    ("repeat_axis", lambda x: dnp.repeat(x, 3, axis=0), [((2, 3),)]),
    ("repeat_counts", lambda x: dnp.repeat(x, [1, 0, 2], axis=1), [((2, 3),)]),
    ("flip", dnp.flip, [((),), ((3,),), ((2, 3),), ((0,),)]),
    ("flip_axis", lambda x: dnp.flip(x, -1), [((2, 3),)]),
    ("fliplr_flipud", lambda x: dnp.fliplr(x) * dnp.flipud(x), [((2, 2),)]),
    ("roll", lambda x: dnp.roll(x, 2), [((),), ((3,),), ((2, 3),)]),
    ("roll_axes", lambda x: dnp.roll(x, (1, -1, 5), (0, 1, 0)), [((2, 3),)]),
    ("rot90", dnp.rot90, [((2, 3),), ((2, 3, 2),)]),
    ("rot90_k", lambda x: dnp.rot90(x, 2) * dnp.rot90(x, -2) + dnp.rot90(x, 3, (1, 0)).T,
     [((2, 3),)]),
    # padding
    ("pad", lambda x: dnp.pad(x, 1), [((),), ((3,),), ((2, 3),), ((0, 2),)]),
    ("pad_pairs", lambda x: dnp.pad(x, ((1, 0), (2, 1)), constant_values=1.5), [((2, 3),)]),
    ("pad_values", lambda x: dnp.pad(x, (1, 2), constant_values=((1, 2), (3, 4))),
     [((2, 3),)]),
    ("pad_traced_values", lambda x, c: dnp.pad(x, ((1, 1), (0, 2)), constant_values=c),
     [((2, 3), ()), ((2, 3), (2,)), ((2, 3), (2, 2))]),
    ("pad_edge", lambda x: dnp.pad(x, (2, 1), mode="edge"), [((3,),), ((2, 3),)]),
    ("pad_wrap", lambda x: dnp.pad(x, (4, 1), mode="wrap"), [((3,),), ((2, 3),)]),
    ("pad_reflect", lambda x: dnp.pad(x, ((1, 2), (2, 0)), mode="reflect"), [((3, 3),)]),
    ("pad_symmetric", lambda x: dnp.pad(x, 2, mode="symmetric"), [((3,),), ((2, 3),)]),
    # diagonals, triangles, products of shapes
    ("diag_vector", lambda x: dnp.diag(x), [((3,),), ((1,),)]),
    ("diag_vector_k", lambda x: dnp.diag(x, 1) + dnp.diag(x, -1)[::-1], [((3,),)]),
    ("diag_matrix", lambda x: dnp.diag(x), [((3, 3),), ((2, 3),)]),
    ("diag_matrix_k", lambda x: dnp.diag(x, 1) * dnp.diag(x, -1)[:2], [((3, 3),)]),
    ("diagonal", lambda x: dnp.diagonal(x, 1, 2, 0), [((2, 3, 4),)]),
    ("diagonal_neg", lambda x: dnp.diagonal(x, -1), [((3, 2),), ((4, 3, 2),)]),
    ("trace", dnp.trace, [((3, 3),), ((2, 3),), ((2, 3, 4),)]),
    ("trace_axes", lambda x: dnp.trace(x, 1, -1, -2), [((2, 3, 4),)]),
    ("tril", dnp.tril, [((3,),), ((3, 3),), ((2, 3, 4),)]),
    ("tril_k", lambda x: dnp.tril(x, -1) + dnp.tril(x, 1), [((3, 4),)]),
    ("triu", dnp.triu, [((3,),), ((3, 3),), ((2, 3, 4),)]),
    ("triu_k", lambda x: dnp.triu(x, 1) * dnp.triu(x, -1), [((3, 4),)]),
    ("outer", dnp.outer, [((3,), (2,)), ((2, 2), (3,)), ((), (2,))]),
    ("kron", dnp.kron, [((2,), (3,)), ((2, 2), (2, 3)), ((2,), (2, 3)), ((), (2,))]),
    # gathers
    ("take", lambda x: dnp.take(x, [0, 5, 5, -1]), [((2, 3),)]),
    ("take_axis", lambda x: dnp.take(x, I2, axis=1), [((2, 3),), ((4, 3, 2),)]),
    ("take_scalar", lambda x: dnp.take(x, 1, axis=0), [((2, 3),)]),
    ("take_modes", lambda x: dnp.take(x, [-1, 4], mode="wrap") * dnp.take(x, [-1, 4],
                                                                          mode="clip"),
     [((3,),)]),
    ("take_along_axis", lambda x: dnp.take_along_axis(x, ORDER23, axis=1), [((2, 3),)]),
    ("take_along_axis0", lambda x: dnp.take_along_axis(x, ORDER23[:, :1] % 2, axis=0),
     [((2, 3),)]),
    ("take_along_axis_none", lambda x: dnp.take_along_axis(x, np.array([5, 0, 0]), None),
     [((2, 3),)]),
    ("select", lambda x, y: dnp.select([x > 0.5, y < 0], [x * y, y], default=-x),
     [((2, 3), (2, 3)), ((3,), (2, 3))]),
    # minimum ranks, grids, arrays
    ("atleast_1d", dnp.atleast_1d, [((),), ((3,),)]),
    ("atleast_2d", dnp.atleast_2d, [((),), ((3,),), ((2, 3),)]),
    ("atleast_3d", dnp.atleast_3d, [((),), ((3,),), ((2, 3),), ((2, 3, 1, 2),)]),
    ("atleast_many", lambda x, y: dnp.atleast_2d(x, y), [((), (3,))]),
    ("meshgrid", dnp.meshgrid, [((3,), (2,)), ((3,), (2,), (4,))]),
    ("meshgrid_ij", lambda x, y: dnp.meshgrid(x, y, indexing="ij"), [((3,), (2,))]),
    ("meshgrid_sparse", lambda x, y: dnp.meshgrid(x, y, sparse=True), [((3,), (2,))]),
    ("array", lambda x, y: dnp.array([x, y * 2, 3.0]), [((), ())]),
    ("array_nested", lambda x, y: dnp.array([[x[0], 1.0], (y, x[1] * y)]), [((2,), ())]),
    ("array_rows", lambda x, y: dnp.array([x, np.ones(3), y], dtype=np.float64, ndmin=3),
     [((3,), (3,))]),
    ("asarray", lambda x: dnp.asarray([x, x]) + dnp.asarray(x), [((2,),)]),
    ("copy", lambda x: dnp.copy(x) * x, [((3,),)]),
    # indexing
    ("index_int", lambda x: x[1], [((3,),), ((2, 3),)]),
    ("index_negative", lambda x: x[-1, -2], [((2, 3),)]),
    ("index_slices", lambda x: x[:, 1:3], [((2, 3),), ((2, 4, 2),)]),
    ("index_steps", lambda x: x[::-1, ::2], [((2, 3),), ((3, 5),)]),
    ("index_none_ellipsis", lambda x: x[None, ..., 0, None], [((2, 3),), ((3,),)]),
    ("index_empty", lambda x: x[1:1], [((3,),), ((2, 3),)]),
    ("index_int_array", lambda x: x[np.array([1, 0, 1])], [((2,),), ((2, 3),)]),
    ("index_list", lambda x: x[[0, 1, 1], [2, 2, 0]], [((2, 3),)]),
    ("index_2d_array", lambda x: x[I2 % 2], [((2, 3),)]),
    ("index_mixed", lambda x: x[1:, [2, 0, 0]], [((2, 3),), ((3, 3, 2),)]),
    ("index_separated", lambda x: x[[0, 1], :, [1, 1]], [((2, 3, 2),)]),
    ("index_adv_then_none", lambda x: x[[1, 0], None, 1:], [((2, 3),)]),
    ("index_mask", lambda x: x[MASK23], [((2, 3),)]),
    ("index_mask_row", lambda x: x[np.array([False, True])], [((2, 3),)]),
    ("index_mask_axis1", lambda x: x[:, np.array([True, False, True])], [((2, 3),)]),
    ("index_bool_scalar", lambda x: x[True], [((2,),)]),
    ("index_empty_list", lambda x: x[[]], [((3,),)]),
    # functional updates (through diffprog.numpy._indexing; x.at[...] on traced values)
    ("at_add", lambda x, v: _indexing.at_add(x, [0, 2, 0], v), [((3,), (3,)), ((3, 2), (2,))]),
    ("at_set", lambda x, v: _indexing.at_set(x, (slice(None), 1), v),
     [((2, 3), ()), ((2, 3), (2,))]),
    ("at_set_repeated", lambda x, v: _indexing.at_set(x, [1, 1, 0, 1], v), [((3,), (4,))]),
    ("at_multiply", lambda x, v: _indexing.at_multiply(x, [0, 2, 0], v),
     [((3,), (3,)), ((3, 2), ())]),
    ("at_min", lambda x, v: _indexing.at_min(x, [0, 2, 0], v), [((3,), (3,)), ((3,), ())]),
    ("at_max", lambda x, v: _indexing.at_max(x, (slice(1, None), [0, 0]), v),
     [((3, 2), (2, 2)), ((3, 2), ())]),
    # methods of traced values
    ("method_ravel", lambda x: x.ravel() * x.flatten(), [((2, 3),)]),
    ("method_squeeze", lambda x: x.squeeze(), [((1, 3),)]),
    ("method_transpose", lambda x: x.transpose() + x.transpose(1, 0) + x.transpose((1, 0)),
     [((2, 3),)]),
    ("method_swapaxes", lambda x: x.swapaxes(0, 1), [((2, 3),)]),
    ("method_reshape", lambda x: x.reshape(3, 2) + x.reshape((3, 2)), [((2, 3),)]),
    ("method_repeat", lambda x: x.repeat(2, axis=1), [((2, 3),)]),
    ("method_take", lambda x: x.take([2, 0, 2]), [((2, 3),)]),
    ("method_diagonal", lambda x: x.diagonal(1), [((3, 3),)]),
    ("method_trace", lambda x: x.trace(), [((3, 3),)]),
    ("method_copy", lambda x: x.copy() ** 2, [((3,),)]),
    ("iter", lambda x: list(x), [((3, 2),)]),
]

CASES = [(name, fn, shapes) for name, fn, variants in TABLE for shapes in variants]
IDS = [f"{name}-{shapes}" for name, _, shapes in CASES]


def _nonlinear(fn):
    """``fn`` followed by a square, so that order-2 checks see a nonzero second derivative."""
    def f(*args):
        out = fn(*args)
        if isinstance(out, (list, tuple)):
            return [o * o for o in out]
        return out * out
    return f


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,fn,shapes", CASES, ids=IDS)
def test_table_grads(name, fn, shapes, dtype):
    args = tuple(real(s, dtype) for s in shapes)
    dp.check_grads(_nonlinear(fn), args, order=2, **tol_for(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,fn,shapes", CASES, ids=IDS)
def test_table_values_match_numpy(name, fn, shapes, dtype):
    args = tuple(real(s, dtype) for s in shapes)
    expected = fn(*args)  # plain NumPy arrays go straight to NumPy
    traced, _ = dp.jvp(fn, args, tuple(np.zeros_like(a) for a in args))
    e_leaves = expected if isinstance(expected, (list, tuple)) else [expected]
    t_leaves = traced if isinstance(traced, (list, tuple)) else [traced]
    assert type(traced) is type(expected) or not isinstance(expected, (list, tuple))
    assert len(t_leaves) == len(e_leaves)
    for t, e in zip(t_leaves, e_leaves):
        assert np.shape(t) == np.shape(e)
        assert np.asarray(t).dtype == np.asarray(e).dtype
        # exact for moves; at_add sums x + (v0 + v2) where np.add.at sums (x + v0) + v2
        np.testing.assert_allclose(t, e, rtol=1e-6, atol=0)


# ----------------------------------------------------------------------------------------------
# Gather adjoints and functional updates, in closed form


def test_repeated_gather_adjoint_accumulates():
    idx = np.array([0, 0, 2, 0, 4, 2])
    w = np.arange(1.0, 7.0)
    g = dp.grad(lambda x: dnp.sum(w * x[idx]))(np.zeros(5))
    np.testing.assert_array_equal(g, np.bincount(idx, weights=w, minlength=5))
    g = dp.grad(lambda x: dnp.sum(x[idx]))(np.zeros(5))
    np.testing.assert_array_equal(g, [3.0, 0.0, 2.0, 0.0, 1.0])
    # rows gathered twice, mixed with a slice
    g = dp.grad(lambda x: dnp.sum(x[[1, 1, 0], 1:]))(np.zeros((2, 3)))
    np.testing.assert_array_equal(g, [[0, 1, 1], [0, 2, 2]])
    # forward mode agrees: the tangent of a gather is the gathered tangent
    _, t = dp.jvp(lambda x: x[idx], (np.zeros(5),), (np.arange(5.0),))
    np.testing.assert_array_equal(t, np.arange(5.0)[idx])


@pytest.mark.parametrize("kind", ["permutation", "repeats", "negative", "mixed"])
def test_large_gather_adjoint(kind):
    # Large scatters assign when no position repeats and accumulate otherwise.
    x = real((200, 40))
    rows = {"permutation": RNG.permutation(200), "repeats": RNG.integers(0, 200, 300),
            "negative": -1 - RNG.permutation(200), "mixed": RNG.integers(-200, 200, 300)}[kind]
    w = real((rows.size, 40))
    g = dp.grad(lambda x: dnp.sum(w * x[rows]))(x)
    expected = np.zeros_like(x)
    np.add.at(expected, rows, w)
    np.testing.assert_allclose(g, expected)
    cols = rows % 40
    g = dp.grad(lambda x: dnp.sum(w[:, :1].T * x[1:, cols]))(x)
    expected = np.zeros_like(x)
    np.add.at(expected, (slice(1, None), cols), np.broadcast_to(w[:, :1].T, (199, cols.size)))
    np.testing.assert_allclose(g, expected)


def test_repeated_gather_second_order():
    idx = np.array([1, 1, 1, 0])
    x = np.array([0.5, -1.5])
    h = dp.grad(lambda x: dp.grad(lambda x: dnp.sum(x[idx] ** 3))(x)[1])(x)
    np.testing.assert_allclose(h, [0.0, 3 * 6 * x[1]])


def test_take_and_take_along_axis_repeated_adjoint():
    g = dp.grad(lambda x: dnp.sum(dnp.take(x, [2, 2, 2, 0], axis=1)))(np.zeros((2, 3)))
    np.testing.assert_array_equal(g, [[1, 0, 3], [1, 0, 3]])
    idx = np.array([[0, 0, 0], [1, 2, 1]])
    g = dp.grad(lambda x: dnp.sum(dnp.take_along_axis(x, idx, axis=1)))(np.zeros((2, 3)))
    np.testing.assert_array_equal(g, [[3, 0, 0], [0, 2, 1]])


def test_at_add_gradients():
    x, v = real((4,)), real((3,))
    idx = [1, 3, 1]

    def f(x, v):
        return dnp.sum(np.arange(1.0, 5.0) * _indexing.at_add(x, idx, v))
    gx, gv = dp.grad(f, argnums=(0, 1))(x, v)
    np.testing.assert_array_equal(gx, np.arange(1.0, 5.0))
    np.testing.assert_array_equal(gv, [2.0, 4.0, 2.0])
    np.testing.assert_allclose(_indexing.at_add(x, idx, v), x + np.bincount(idx, v, 4))


def test_at_set_gradients_and_last_write_wins():
    x, v = real((4,)), np.array([10.0, 20.0, 30.0])
    idx = [1, 3, 1]
    out = _indexing.at_set(x, idx, v)
    np.testing.assert_array_equal(out, [x[0], 30.0, x[2], 20.0])
    expected = x.copy()
    expected[idx] = v
    np.testing.assert_array_equal(out, expected)  # NumPy's assignment agrees

    def f(x, v):
        return dnp.sum(np.arange(1.0, 5.0) * _indexing.at_set(x, idx, v))
    gx, gv = dp.grad(f, argnums=(0, 1))(x, v)
    np.testing.assert_array_equal(gx, [1.0, 0.0, 3.0, 0.0])
    np.testing.assert_array_equal(gv, [0.0, 4.0, 2.0])  # the overwritten write gets zero
    dp.check_grads(lambda x, v: _indexing.at_set(x, idx, v) ** 2, (x, v), order=2)


def test_at_multiply_min_max_gradients():
    x, v = np.array([1.0, 2.0, 3.0]), np.array([2.0, 5.0, 4.0])
    idx = [0, 2, 0]
    out = _indexing.at_multiply(x, idx, v)
    np.testing.assert_allclose(out, [8.0, 2.0, 15.0])
    gx, gv = dp.grad(lambda x, v: dnp.sum(_indexing.at_multiply(x, idx, v)),
                     argnums=(0, 1))(x, v)
    np.testing.assert_allclose(gx, [8.0, 1.0, 5.0])
    np.testing.assert_allclose(gv, [4.0, 3.0, 2.0])

    x, v = np.array([1.0, 2.0, 3.0]), np.array([0.5, 5.0, -1.0])
    out = _indexing.at_min(x, idx, v)
    np.testing.assert_allclose(out, [-1.0, 2.0, 3.0])
    gx, gv = dp.grad(lambda x, v: dnp.sum(_indexing.at_min(x, idx, v)), argnums=(0, 1))(x, v)
    np.testing.assert_allclose(gx, [0.0, 1.0, 1.0])
    np.testing.assert_allclose(gv, [0.0, 0.0, 1.0])

    out = _indexing.at_max(x, idx, v)
    np.testing.assert_allclose(out, [1.0, 2.0, 5.0])
    gx, gv = dp.grad(lambda x, v: dnp.sum(_indexing.at_max(x, idx, v)), argnums=(0, 1))(x, v)
    np.testing.assert_allclose(gx, [1.0, 1.0, 0.0])
    np.testing.assert_allclose(gv, [0.0, 1.0, 0.0])
    # a tie between x and a value shares the derivative evenly, as maximum does
    gx, gv = dp.grad(lambda x, v: dnp.sum(_indexing.at_max(x, [0], v)),
                     argnums=(0, 1))(np.array([1.0, 2.0]), np.array([1.0]))
    np.testing.assert_allclose(gx, [0.5, 1.0])
    np.testing.assert_allclose(gv, [0.5])


@pytest.mark.parametrize("op", ["add", "set", "multiply", "min", "max"])
def test_at_updates_match_numpy_on_plain_arrays(op):
    x, v = real((3, 4)), real((5,))
    idx = (np.array([0, 2, 2, 0, 2]), np.array([1, 3, 3, 1, 3]))
    got = getattr(_indexing, f"at_{op}")(x, idx, v)
    expected = x.copy()
    if op == "set":
        expected[idx] = v
    else:
        {"add": np.add, "multiply": np.multiply, "min": np.minimum,
         "max": np.maximum}[op].at(expected, idx, v)
    np.testing.assert_allclose(got, expected)
    traced, _ = dp.jvp(lambda x, v: getattr(_indexing, f"at_{op}")(x, idx, v), (x, v),
                       (x, v))
    np.testing.assert_allclose(traced, expected)
    dp.check_grads(lambda x, v: getattr(_indexing, f"at_{op}")(x, idx, v) ** 2, (x, v),
                   order=2)


def test_at_keeps_dtype_of_x():
    x = real((3,), np.float32)
    out = dp.jvp(lambda x: _indexing.at_add(x, 0, 1.0), (x,), (x,))[0]
    assert out.dtype == np.float32
    g = dp.grad(lambda v: dnp.sum(_indexing.at_set(np.zeros(3, np.float32), 1, v)))(2.0)
    assert float(g) == 1.0


def test_at_property_on_traced_values():
    x = real((3,))
    g = dp.grad(lambda x: dnp.sum(x.at[[0, 0]].add(x[1]) + x.at[2].set(x[0] ** 2)))(x)
    np.testing.assert_allclose(g, [2 + 2 * x[0], 4.0, 1.0])
    np.testing.assert_array_equal(dnp.at(np.zeros(3))[1].set(5.0), [0.0, 5.0, 0.0])


# ----------------------------------------------------------------------------------------------
# Masks, round trips, NumPy dispatch


def test_boolean_mask_gradients():
    x = real((2, 3))
    g = dp.grad(lambda x: dnp.sum(x[MASK23] ** 2))(x)
    np.testing.assert_allclose(g, 2 * x * MASK23)
    g = dp.grad(lambda x: dnp.sum(x[x > 0] ** 3))(x)
    np.testing.assert_allclose(g, 3 * x ** 2 * (x > 0))
    g = dp.grad(lambda x: dnp.sum(x[:, np.array([True, False, True])]))(x)
    np.testing.assert_array_equal(g, [[1, 0, 1], [1, 0, 1]])
    dp.check_grads(lambda x: x[x < 0.3] * x[x < 0.3], (x,), order=2)


def test_concatenate_split_round_trip():
    x = real((2, 5))
    g = dp.grad(lambda x: dnp.sum(np.arange(10.0).reshape(2, 5)
                                  * dnp.concatenate(dnp.split(x, [1, 3], axis=1), axis=1)))(x)
    np.testing.assert_array_equal(g, np.arange(10.0).reshape(2, 5))
    a, b = real((2, 3)), real((1, 3))

    def f(a, b):
        top, bottom = dnp.split(dnp.concatenate([a, b]), [2])
        return dnp.sum(top * 2.0) + dnp.sum(bottom ** 2)
    ga, gb = dp.grad(f, argnums=(0, 1))(a, b)
    np.testing.assert_array_equal(ga, np.full((2, 3), 2.0))
    np.testing.assert_allclose(gb, 2 * b)
    # an unused piece contributes zeros
    g = dp.grad(lambda x: dnp.sum(dnp.array_split(x, 3)[1]))(np.zeros(5))
    np.testing.assert_array_equal(g, [0, 0, 1, 1, 0])
    graph = dp.make_graph(lambda x: dnp.concatenate(dnp.split(x, 2)))(np.ones(4))
    assert graph.primitive_names() == ["split", "concatenate"]


def _sum_squares(out):
    if isinstance(out, (list, tuple)):
        return sum(dnp.sum(o * o) for o in out)
    return dnp.sum(out * out)


def _both(np_fn, dnp_fn, *args):
    argnums = tuple(range(len(args)))
    g_np = dp.grad(lambda *a: _sum_squares(np_fn(*a)), argnums=argnums)(*args)
    g_dnp = dp.grad(lambda *a: _sum_squares(dnp_fn(*a)), argnums=argnums)(*args)
    for a, b in zip(g_np, g_dnp):
        np.testing.assert_array_equal(a, b)


def test_plain_numpy_calls_dispatch_to_diffprog():
    x, y = real((2, 3)), real((1, 3))
    _both(lambda x, y: np.concatenate([x, y]), lambda x, y: dnp.concatenate([x, y]), x, y)
    _both(lambda x, y: np.stack([x[0], y[0] * x[1]]), lambda x, y: dnp.stack([x[0],
                                                                               y[0] * x[1]]),
          x, y)
    _both(lambda x: np.flip(x, 1) * x, lambda x: dnp.flip(x, 1) * x, x)
    _both(lambda x: np.pad(x, 1, constant_values=2.0), lambda x: dnp.pad(x, 1,
                                                                         constant_values=2.0),
          x)
    _both(lambda x: x[::-1, None] * x, lambda x: dnp.expand_dims(dnp.flip(x, 0), 1) * x, x)
    for name, args in [("reshape", ((3, 2),)), ("ravel", ()), ("transpose", ()),
                       ("moveaxis", (0, 1)), ("swapaxes", (0, 1)), ("expand_dims", (1,)),
                       ("tile", ((2, 1),)), ("repeat", (2, 1)), ("roll", (1, 1)),
                       ("rot90", ()), ("diagonal", ()), ("trace", ()), ("tril", ()),
                       ("triu", (1,)), ("diag", ()), ("take", ([0, 0, 4],)),
                       ("split", (3, 1)), ("array_split", (2,)), ("atleast_3d", ()),
                       ("outer", (np.ones(2),)), ("kron", (np.ones((2, 1)),)),
                       ("hstack", None), ("vstack", None), ("copy", ()),
                       ("broadcast_to", ((4, 2, 3),))]:
        np_fn, dnp_fn = getattr(np, name), getattr(dnp, name)
        if args is None:
            _both(lambda x, f=np_fn: f([x, x]), lambda x, f=dnp_fn: f([x, x]), x)
        else:
            _both(lambda x, f=np_fn, a=args: f(x, *a), lambda x, f=dnp_fn, a=args: f(x, *a),
                  x)
    x3 = real((3, 3))
    _both(lambda x: np.take_along_axis(x, np.argsort(x, axis=1), axis=1) * x,
          lambda x: dnp.take_along_axis(x, np.argsort(x, axis=1), axis=1) * x, x3)
    _both(lambda x: np.select([x > 0], [x ** 2], x), lambda x: dnp.select([x > 0], [x ** 2], x),
          x3)
    _both(lambda x: np.meshgrid(x[0], x[1])[0], lambda x: dnp.meshgrid(x[0], x[1])[0], x3)


def test_nonzero_family_has_no_derivative():
    x = np.array([[0.0, 1.5], [-2.0, 0.0]])

    def f(x):
        rows, cols = np.nonzero(x)
        assert not isinstance(rows, dp.core.Tracer)
        np.testing.assert_array_equal(rows, [0, 1])
        np.testing.assert_array_equal(x.nonzero()[1], [1, 0])
        np.testing.assert_array_equal(np.argwhere(x), [[0, 1], [1, 0]])
        np.testing.assert_array_equal(dnp.argwhere(x[0, 1]), np.argwhere(1.5))
        np.testing.assert_array_equal(np.flatnonzero(x), [1, 2])
        return dnp.sum(x[rows, cols] ** 2)
    np.testing.assert_allclose(dp.grad(f)(x), 2 * x)
    _, t = dp.jvp(f, (x,), (np.ones((2, 2)),))
    assert float(t) == pytest.approx(2 * (1.5 - 2.0))


def test_integer_traced_values_index_by_their_value():
    def f(x):
        i = dnp.astype(x[0] * 0 + 2.0, np.int64)
        return x[i] * x[np.stack([i, i])].sum()
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(dp.grad(f)(x), [0.0, 0.0, 4 * 3.0])


def test_nested_derivatives_through_movement():
    x = real((3,))

    def f(x):
        inner = dp.grad(lambda y: dnp.sum(dnp.roll(dnp.concatenate([y, x]), 1) ** 2))(x)
        return dnp.sum(dnp.pad(inner, 1) * dnp.pad(x, (2, 0)))
    dp.check_grads(f, (x,), order=2)


def test_graph_params_of_basic_index_are_hashable():
    graph = dp.make_graph(lambda x: x[1:, ::-1, None, 0])(np.ones((3, 2, 2)))
    (node,) = graph.nodes
    hash(tuple(node.params.items()))
    assert "getitem[idx=((1, None, None), (None, None, -1), None, 0)]" in str(graph)


# ----------------------------------------------------------------------------------------------
# Errors


def test_errors():
    x = real((2, 3))

    def raises(exc, match, fn):
        with pytest.raises(exc, match=match):
            dp.grad(lambda x: dnp.sum(fn(x)))(x)
    raises(TypeError, "drop its derivative", lambda x: np.array([x[0, 0], 1.0]))
    raises(TypeError, r"\.item\(\).*drop its derivative", lambda x: x[0, 0].item())
    raises(TypeError, r"\.tolist\(\).*drop its derivative", lambda x: x.tolist())
    raises(NotImplementedError, "mode='mean' is not supported on traced values",
           lambda x: dnp.pad(x, 1, mode="mean"))
    raises(NotImplementedError, "reflect_type='odd'",
           lambda x: dnp.pad(x, 1, mode="reflect", reflect_type="odd"))
    raises(ValueError, "unsupported keyword arguments for mode 'edge'",
           lambda x: dnp.pad(x, 1, mode="edge", constant_values=1.0))
    raises(ValueError, "index can't contain negative values", lambda x: dnp.pad(x, -1))
    raises(TypeError, "traced float value cannot be used as an index", lambda x: x[x[0, 0]])
    raises(IndexError, "out of bounds", lambda x: x[[0, 5]])
    raises(IndexError, "valid indices", lambda x: x[np.array([0.5])])
    raises(ValueError, "zero-dimensional arrays cannot be concatenated",
           lambda x: dnp.concatenate([x[0, 0], x[0, 1]]))
    raises(ValueError, "along dimension 1, the array at index 0 has size 3 and the array at "
                       "index 1 has size 2", lambda x: dnp.concatenate([x, x[:, :2]]))
    raises(ValueError, "same number of dimensions", lambda x: dnp.concatenate([x, x[0]]))
    raises(ValueError, "all input arrays must have the same shape",
           lambda x: dnp.stack([x, x[0]]))
    raises(ValueError, "equal division", lambda x: dnp.split(x, 2, axis=1))
    raises(ValueError, "cannot reshape array of size 6 into shape", lambda x: x.reshape(4, -1))
    raises(ValueError, "can only specify one unknown dimension", lambda x: x.reshape(-1, -1))
    raises(ValueError, "cannot select an axis to squeeze out", lambda x: dnp.squeeze(x, 0))
    raises(ValueError, "axes don't match array", lambda x: dnp.transpose(x, (0,)))
    raises(np.exceptions.AxisError, "out of bounds", lambda x: dnp.moveaxis(x, 2, 0))
    raises(ValueError, "broadcast", lambda x: dnp.broadcast_to(x, (3, 3)))
    raises(ValueError, "Input must be 1- or 2-d", lambda x: dnp.diag(x[None]))
    raises(TypeError, "out=", lambda x: dnp.concatenate([x, x], out=np.zeros((4, 3))))
    raises(TypeError, "invalid entry 0 in condlist", lambda x: dnp.select([x], [x]))
    raises(TypeError, "Cannot cast", lambda x: dnp.concatenate([x, x], dtype=np.int64))
    raises(ValueError, "repeats may not contain negative values",
           lambda x: dnp.repeat(x, -1))


def test_setitem_error_names_at():
    with pytest.raises(TypeError, match=r"x\.at\[idx\]\.set\(v\)"):
        def f(x):
            x[0] = 1.0
            return dnp.sum(x)
        dp.grad(f)(np.ones(2))


def test_numpy_array_of_tracers_error_is_a_type_error():
    with pytest.raises(TypeError, match="traced value"):
        dp.grad(lambda x: np.sum(np.array([x, 2.0])))(1.0)
    # the fix the message points to
    assert dp.grad(lambda x: dnp.sum(dnp.array([x, 2.0 * x])))(1.0) == 3.0


# Every primitive this family adds, exercised with float64 arguments (for the registry test).
COVERAGE = [
    (lambda x: dnp.concatenate(dnp.split(x, [1], axis=1), axis=1), (real((2, 3)),)),
    (lambda x: dnp.roll(x, 1) * dnp.pad(x, 1)[1:-1, 1:-1], (real((2, 3)),)),
    (lambda x: x[np.array([0, 0, 1]), 1:] + dnp.diag(x[0]).sum(), (real((2, 3)),)),
    (lambda x: dnp.tile(dnp.transpose(x), 2).sum() * dnp.flatnonzero(x).size, (real((2, 3)),)),
    (lambda x, v: _indexing.at_set(x, [0, 0], v) + _indexing.at_add(x, 1, v[0]),
     (real((3,)), real((2,)))),
]


def test_coverage_runs():
    for fn, args in COVERAGE:
        dp.check_grads(fn, args, order=1)
