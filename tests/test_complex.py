"""Complex numbers in the transforms and the elementwise and reduction rules (issue 14).

The convention is JAX's: a jvp is the ordinary (R-linear) derivative, a vjp its transpose under
the real bilinear pairing Re(sum(a * b)), and ``grad`` of a real f of z = x + iy is
``df/dx - 1j df/dy``. Checked three ways: central differences along the real and imaginary
parts (``check_grads``), hand-derived Wirtinger derivatives, and JAX's own jvp/vjp values
(computed once with jax 0.10.2 in float64 and stored below: the tests do not import jax).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.testing import check_grads, numerical_grad

Z = np.array([0.7 - 0.4j, -0.3 + 0.9j, 1.2 + 0.5j])
T = np.array([0.3 + 1.1j, -0.8 + 0.2j, 0.5 - 0.6j])
CT = np.array([1.3 - 0.2j, 0.4 + 0.7j, -0.9 + 0.1j])

# name -> f, written with diffprog.numpy (JAX's table below uses the same expressions)
FUNCS = {
    "exp": dnp.exp, "log": dnp.log, "log1p": dnp.log1p, "expm1": dnp.expm1, "sqrt": dnp.sqrt,
    "sin": dnp.sin, "cos": dnp.cos, "tan": dnp.tan, "arcsin": dnp.arcsin,
    "arccos": dnp.arccos, "arctan": dnp.arctan, "sinh": dnp.sinh, "cosh": dnp.cosh,
    "tanh": dnp.tanh, "arcsinh": dnp.arcsinh, "arccosh": dnp.arccosh, "arctanh": dnp.arctanh,
    "abs": dnp.abs, "angle": dnp.angle, "real": dnp.real, "imag": dnp.imag, "conj": dnp.conj,
    "reciprocal": dnp.reciprocal, "square": dnp.square,
    "z**3": lambda z: z ** 3, "z**-2": lambda z: z ** -2,
    "z**(1.5+0.5j)": lambda z: z ** (1.5 + 0.5j), "(0.5+2j)**z": lambda z: (0.5 + 2j) ** z,
    "z**z[::-1]": lambda z: z ** z[::-1], "(1+2j)/z": lambda z: (1 + 2j) / z,
    "z/z[::-1]": lambda z: z / z[::-1], "exp2": dnp.exp2, "log2": dnp.log2,
    "log10": dnp.log10, "where": lambda z: dnp.where(dnp.real(z) > 0, z, z * z),
    "abs(z)**2": lambda z: dnp.abs(z) ** 2, "sum": dnp.sum, "prod": dnp.prod,
    "cumsum": dnp.cumsum, "cumprod": dnp.cumprod, "mean": dnp.mean, "var": dnp.var,
    "std": dnp.std, "dot": lambda z: dnp.dot(z, z[::-1]), "matmul": lambda z: dnp.outer(z, z) @ z,
    "sum(z*conj(z))": lambda z: dnp.sum(z * dnp.conj(z)),
}
# Not in JAX's table: sign, whose derivative JAX takes as zero (here: that of z / |z|).
EXTRA = {
    "sign": dnp.sign,
    "angle(deg=True)": lambda z: dnp.angle(z, deg=True),
    "real_if_close": lambda z: dnp.real_if_close(z * z),
    "prod with a zero": lambda z: dnp.prod(dnp.concatenate([z, np.zeros(1, z.dtype)])),
    "cumprod 2-d": lambda z: dnp.cumprod(dnp.reshape(dnp.outer(z, z), (3, 3)), axis=1),
    "var(axis, ddof)": lambda z: dnp.var(dnp.outer(z, z[::-1]), axis=0, ddof=1),
    "std(z) * z": lambda z: dnp.std(z) * z,
    "mean(keepdims)": lambda z: dnp.mean(dnp.outer(z, z), axis=1, keepdims=True),
    "mixed real": lambda z: dnp.sin(dnp.real(z)) * dnp.exp(dnp.imag(z)) + dnp.abs(z),
    "power array": lambda z: dnp.power(z, z[::-1]),
    "divide": lambda z: dnp.divide(z, dnp.conj(z) + 2.0),
    "where real scalar": lambda z: dnp.where(dnp.abs(z) > 1.0, z, 0.0),
    "matmul 2-d": lambda z: dnp.outer(z, dnp.conj(z)) @ dnp.outer(z[::-1], z),
    "z ** int array": lambda z: dnp.power(z, np.array([2, -3, 4])),
    "real ** z": lambda z: dnp.power(np.array([1.5, 2.0, 0.5]), z),
    "z ** real array": lambda z: dnp.power(z, np.array([0.5, -1.5, 2.5])),
    "2.0 ** z": lambda z: 2.0 ** z,
    "real * z": lambda z: np.array([1.5, -2.0, 0.5]) * z + 1.0,
}

# JAX 0.10.2, float64: name -> (jvp(f, (Z,), (T,)) tangent, vjp(f, Z) of CT), where CT is
# cut to the output's size (its real part for real outputs). Left out: arccosh, whose jvp in
# JAX is 1/sqrt(z**2 - 1), the negative of the derivative of the principal branch for
# Re(z) < 0 (at Z[1]); diffprog's 1/(sqrt(z - 1) sqrt(z + 1)) is checked below by hand and by
# central differences.
JAX = {
    'exp': ([(1.4190481864046083+1.8050103051118216j), (-0.4844605620023024-0.37214227979141434j),
        (2.411887663762499-0.9523316069424829j)],
        [(2.254387343311844-1.3904077275952744j), (-0.2220119969207216+0.5544711324175413j),
            (-2.781483927738838-1.1412062880376366j)]),
    'log': ([(-0.35384615384615403+1.3692307692307693j), (0.4666666666666667+0.7333333333333334j),
        (0.1775147928994083-0.5739644970414202j)],
        [(1.5230769230769232+0.5846153846153846j), (0.5666666666666667-0.6333333333333333j),
            (-0.6094674556213019+0.3372781065088758j)]),
    'log1p': ([(0.022950819672131115+0.6524590163934426j),
        (-0.29230769230769227+0.6615384615384616j), (0.15717092337917485-0.3084479371316306j)],
        [(0.7508196721311475+0.059016393442622966j), (0.7+0.09999999999999992j),
            (-0.3791748526522593+0.13163064833005894j)]),
    'expm1': ([(1.4190481864046083+1.8050103051118214j), (-0.4844605620023024-0.37214227979141434j),
        (2.411887663762499-0.9523316069424826j)],
        [(2.2543873433118438-1.3904077275952744j), (-0.2220119969207216+0.5544711324175413j),
            (-2.7814839277388375-1.1412062880376366j)]),
    'sqrt': ([(0.004240538763200063+0.6348975549219933j),
        (-0.15683707163200952+0.3931893526509895j), (0.1634049675865231-0.30100915081727936j)],
        [(0.7282448064796261+0.07816475506120825j), (0.4115762626329337+0.04353182701074703j),
            (-0.3784115038845798+0.12040366032691174j)]),
    'sin': ([(-0.04302037744488547+0.988918907245587j), (-1.15593505985519+0.03113079527958619j),
        (-0.08710670901963491-0.48800300370216787j)],
        [(1.1278274674079183+0.1786281358650993j), (0.3352823819895139+1.0796983752308766j),
            (-0.3191754921541778+0.47797347427496184j)]),
    'cos': ([(-0.5545105609658382-0.6718423252448031j), (-0.142671010879747+0.8692363047716836j),
        (-0.6387894918221635+0.5361834219707945j)],
        [(-0.8425475845991917+0.547698108113448j), (0.8558706132532821-0.09581336455274261j),
            (0.9647746190081848+0.06484148489795881j)]),
    'tan': ([(1.1714306983982394+0.9571935866353755j), (-0.3257921716860025+0.26404149383318226j),
        (1.2550743742289487+1.4777203409056887j)],
        [(1.2502782021649308-1.2174683314502792j), (0.3347487455245839+0.236734589689807j),
            (0.13769678063446478-2.243645602023092j)]),
    'arcsin': ([(0.7033298774936564+0.9970369865961924j),
        (-0.5663768022272747+0.23751516021501143j), (0.7085229826870585-0.008605434176017921j)],
        [(1.2347316840017295-0.6757424844186118j), (0.3734669513801717+0.47018885968640256j),
            (-0.5992842359289322-0.5619467050604746j)]),
    'arccos': ([(-0.7033298774936564-0.9970369865961924j),
        (0.5663768022272747-0.23751516021501143j), (-0.7085229826870585+0.008605434176017921j)],
        [(-1.2347316840017295+0.6757424844186118j), (-0.3734669513801717-0.47018885968640256j),
            (0.5992842359289322+0.5619467050604746j)]),
    'arctan': ([(-0.10420168067226897+0.7831932773109245j),
        (-0.8972972972972972-1.0162162162162165j), (0.06013373743204888-0.30692259585317744j)],
        [(0.8840336134453782+0.22184873949579836j), (-0.718918918918919+1.1135135135135135j),
            (-0.2968201279645933+0.2083032664646173j)]),
    'sinh': ([(0.6717732120303966+1.1830740108630413j), (-0.4721264844028346+0.3207897204277926j),
        (1.2287044697292222-0.5915626892237991j)],
        [(1.4438320940239222-0.6152457723681339j), (0.426894394509261+0.3594394122658992j),
            (-1.5024672086583033-0.4924069158412809j)]),
    'cosh': ([(0.7472749743742118+0.6219362942487803j), (-0.012334077599467733-0.6929320002192069j),
        (1.1831831940332767-0.36076891771868375j)],
        [(0.8105552492879219-0.7751619552271405j), (-0.6489063914299826+0.19503172015164205j),
            (-1.2790167190805348-0.6487993721963556j)]),
    'tanh': ([(-0.18574875737954286+0.7789554814835498j), (-1.5431843575759399-0.7620233325503549j),
        (-0.04081015054866371-0.25291792611438163j)],
        [(0.8685125989661284+0.3147600618059402j), (-0.30870845363023225+1.6541208657465667j),
            (-0.16904361805939103+0.244237895224885j)]),
    'arcsinh': ([(0.06353541545512512+0.9470004531470686j),
        (-1.0097014892426155-0.3137132708344903j), (0.2123500560626604-0.44629500905308933j)],
        [(1.093716689089618+0.051017160005280886j), (-0.027985625397651447+1.0333490321551206j),
            (-0.53603784102946+0.20255561827274093j)]),
    'arctanh': ([(1.0714754098360655+0.7462295081967214j),
        (-0.39015384615384613+0.23876923076923076j), (0.42341304789648393+0.4837070659169433j)],
        [(0.9954098360655739-1.1304918032786884j), (0.32799999999999996+0.30399999999999994j),
            (0.034550504708353066-0.7445295034211774j)]),
    'abs': ([-0.2852798895551795, 0.4427188724235731, 0.23076923076923075],
        [(1.128716084761797+0.644980619863884j), (-0.12649110640673517-0.37947331922020555j),
            (-0.8307692307692308+0.34615384615384626j)]),
    'angle': ([1.3692307692307693, 0.7333333333333334, -0.57396449704142],
        [(0.8-1.4j), (-0.4+0.13333333333333333j), (0.26627218934911245+0.6390532544378698j)]),
    'real': ([0.3, -0.8, 0.5],
        [(1.3+0j), (0.4+0j), (-0.9+0j)]),
    'imag': ([1.1, 0.2, -0.6],
        [(-0-1.3j), (-0-0.4j), 0.9j]),
    'conj': ([(0.3-1.1j), (-0.8-0.2j), (0.5+0.6j)],
        [(1.3+0.2j), (0.4-0.7j), (-0.9-0.1j)]),
    'reciprocal': ([(1.223668639053255-1.2568047337278108j),
        (-0.5777777777777778+0.7111111111111111j), (0.043765974580721984+0.46006792479254927j)],
        [(-1.280473372781065-1.5668639053254443j), (0.8222222222222222+0.35555555555555546j),
            (0.3329715346101327-0.4198032281782851j)]),
    'square': ([(1.3+1.3j), (0.11999999999999997-1.5600000000000003j), (1.7999999999999998-0.94j)],
        [(1.66-1.32j), (-1.5+0.3000000000000001j), (-2.26-0.66j)]),
    'z**3': ([(2.1449999999999996+0.585j), (2.0520000000000005+0.8640000000000002j),
        (3.9449999999999994-0.342j)],
        [(0.9509999999999997-2.3819999999999997j), (0.2699999999999998-2.16j),
            (-3.573-2.8829999999999996j)]),
    'z**-2': ([(4.1824305871643155-1.2009103322712786j), (1.8074074074074074+0.6814814814814817j),
        (0.3343824046072674+0.6274538727345539j)],
        [(-0.8294947655894397-4.9507510241238055j), (0.16296296296296298-1.8814814814814815j),
            (0.22445470703315581-0.7931948415609565j)]),
    'z**(1.5+0.5j)': ([(0.6436908283599463+1.9972996858349643j),
        (-0.2677201389217559-0.413943233545524j), (1.1264684353782475-0.25868619106881424j)],
        [(2.373387671319452-0.4765833751264432j), (-0.3187265359753225+0.36154510433546777j),
            (-1.1495985830600415-0.6885894686725345j)]),
    '(0.5+2j)**z': ([(-4.817150428871346+0.6154634451489578j),
        (-0.14336728737412924-0.26806033356383424j), (-0.7902757081796659+1.2137768045403448j)],
        [(0.07548073874139899+5.601679172841253j), (-0.21434191434339797+0.20589106464843068j),
            (1.6357233531088502-0.3799853660779338j)]),
    'z**z[::-1]': ([(-0.24704058888536004+2.0170588968538903j),
        (-0.3130758640553334-0.07879238993023424j), (-0.6232560281440542-0.2017764594360843j)],
        [(1.8190404154515138-0.45743076163963003j), (0.008715479374426599+0.31551644585714045j),
            (-1.2279426855561377+0.38075410905348184j)]),
    '(1+2j)/z': ([(3.7372781065088767+1.1905325443786992j), (-2-0.4444444444444445j),
        (-0.8763698750043766+0.5475998739539932j)],
        [(1.8532544378698235-4.127810650887574j), (0.11111111111111127+1.9999999999999998j),
            (1.172577990966703+0.24613984104198028j)]),
    'z/z[::-1]': ([(0.7531248905850636+0.9968488498301882j),
        (-5.551115123125783e-17+1.1102230246251565e-16j), (3.0044970414201186-1.2347928994082837j)],
        [(1.309112426035503+1.228875739644971j), (1.1102230246251565e-16+0j),
            (-1.0992892405728092+0.17756381079093864j)]),
    'exp2': ([(0.6639414193673259+1.0988547804236195j), (-0.43134852631604287-0.1717130651281138j),
        (1.0734236899459537-0.6281940546160818j)],
        [(1.346279741633568-0.6172826170656155j), (-0.04743180433103693+0.4514285420078351j),
            (-1.4020674895644534-0.337046951179206j)]),
    'log2': ([(-0.5104920913914797+1.9753824406018115j), (0.6732576857481829+1.0579763633185733j),
        (0.2560997114004077-0.828055733527985j)],
        [(2.1973355238154983+0.8434217162120095j), (0.8175271898370791-0.9137068592296768j),
            (-0.8792756758080664+0.48658945166077466j)]),
    'log10': ([(-0.1536734320580738+0.5946493675290678j), (0.2026707582215175+0.3184826200623847j),
        (0.07709369501241158-0.24926961387346408j)],
        [(0.6614639032064913+0.2538952355742088j), (0.2461002064118427-0.27505317187205947j),
            (-0.2646883528759464+0.146478020523582j)]),
    'where': ([(0.3+1.1j), (0.11999999999999997-1.56j), (0.5-0.6j)],
        [(1.3-0.2j), (-1.5+0.3000000000000001j), (-0.9+0.1j)]),
    'abs(z)**2': ([-0.4600000000000001, 0.8400000000000001, 0.5999999999999999],
        [(1.8199999999999998+1.04j), (-0.24-0.7200000000000001j), (-2.16+0.9000000000000001j)]),
    'sum': (0.7000000000000001j,
        [(1.3-0.2j), (1.3-0.2j), (1.3-0.2j)]),
    'prod': ((-1.5470000000000002-0.015000000000000013j),
        [(-0.8670000000000001+1.3710000000000002j), (1.326-0.37700000000000006j),
            (0.34500000000000014+0.9450000000000001j)]),
    'cumsum': ([(0.3+1.1j), (-0.5+1.3j), 0.7000000000000001j],
        [(0.8000000000000002+0.6j), (-0.5+0.7999999999999999j), (-0.9+0.1j)]),
    'cumprod': ([(0.3+1.1j), (-1.56+0.4000000000000001j),
        (-1.5470000000000002-0.015000000000000069j)],
        [(1.186-0.968j), (-0.3629999999999999+0.5509999999999999j), (-0.21000000000000005-0.66j)]),
    'mean': (0.23333333333333334j,
        [(0.43333333333333335-0.06666666666666667j), (0.43333333333333335-0.06666666666666667j),
            (0.43333333333333335-0.06666666666666667j)]),
    'var': (0.1711111111111111,
        [(0.1444444444444445+0.6355555555555557j), (-0.7222222222222222-0.49111111111111116j),
            (0.5777777777777778-0.1444444444444445j)]),
    'std': (0.10341394704992381,
        [(0.08729748776941619+0.38410894618543134j), (-0.436487438847081-0.2968114584160151j),
            (0.3491899510776648-0.08729748776941623j)]),
    'dot': ((-0.04000000000000015+0.1399999999999998j),
        [(3.32+0.8200000000000001j), (-0.41999999999999993+2.4600000000000004j), (1.66-1.32j)]),
    'matmul': ([(1.904-1.2180000000000002j), (-0.5459999999999998+3.338j),
        (4.9239999999999995-0.2600000000000001j)],
        [(-1.0820000000000003-0.36599999999999977j), (2.3920000000000003-0.7860000000000001j),
            (-2.4099999999999993-3.0759999999999996j)]),
    'sum(z*conj(z))': ((0.98+0j),
        [(1.8199999999999998+1.04j), (-0.78-2.34j), (3.12-1.3j)]),
}


def _ct_for(out):
    """CT cut (or repeated) to the output's size; its real part for a real output (as in JAX's
    table)."""
    ct = np.resize(CT, np.size(out)).reshape(np.shape(out))
    return ct.astype(np.asarray(out).dtype) if np.iscomplexobj(out) else ct.real.copy()


# ----------------------------------------------------------------------------------------------
# the convention


def test_grad_of_a_real_function_of_z_is_the_conjugate_of_dfdx_plus_i_dfdy():
    # JAX's documented example: f = x**2 + y**2, grad = 2x - 2iy
    assert complex(dp.grad(lambda z: dnp.abs(z) ** 2)(3 + 4j)) == 6 - 8j
    assert complex(dp.grad(lambda z: dnp.real(z) ** 2 + dnp.imag(z) ** 2)(3 + 4j)) == 6 - 8j
    assert complex(dp.grad(lambda z: abs(z) ** 2)(np.complex64(3 + 4j))) == 6 - 8j
    assert dp.grad(lambda z: abs(z) ** 2)(np.complex64(3 + 4j)).dtype == np.complex64
    value, g = dp.value_and_grad(lambda z: dnp.abs(z) ** 2)(3 + 4j)
    assert (float(value), complex(g)) == (25.0, 6 - 8j)
    # a descent step along conj(grad) lowers f
    z = np.complex128(3 + 4j)
    step = z - 0.1 * np.conj(dp.grad(lambda z: dnp.abs(z - 1j) ** 2)(z))
    assert abs(step - 1j) < abs(z - 1j)


def test_grad_of_imag_and_real():
    assert complex(dp.grad(dnp.imag)(np.complex128(2 + 5j))) == -1j
    assert complex(dp.grad(dnp.real)(np.complex128(2 + 5j))) == 1
    np.testing.assert_array_equal(dp.grad(lambda z: dnp.sum(dnp.imag(z) * 3.0))(Z), [-3j] * 3)


@pytest.mark.parametrize("name", list(JAX))
def test_jvp_and_vjp_agree_with_jax(name):
    f = FUNCS[name]
    t_want, v_want = (np.array(a) for a in JAX[name])
    out, t = dp.jvp(f, (Z,), (T,))
    np.testing.assert_allclose(np.asarray(out), np.asarray(f(Z)), rtol=1e-13)
    np.testing.assert_allclose(np.ravel(t), np.ravel(t_want), rtol=1e-11, atol=1e-13)
    out, vjp_fn = dp.vjp(f, Z)
    (v,) = vjp_fn(_ct_for(out))
    np.testing.assert_allclose(v, v_want, rtol=1e-11, atol=1e-13)
    assert v.dtype == np.complex128


# ----------------------------------------------------------------------------------------------
# hand-derived Wirtinger derivatives: f(z + dz) = f + A dz + B conj(dz), so
# jvp(t) = A t + B conj(t), vjp(c) = A c + conj(B c), and grad of a real f is 2 A = 2 df/dz

def _sqrt_1m(z):
    return np.sqrt(1 - z * z)


WIRTINGER = {  # name: (f, A, B); B = 0 for holomorphic f
    "exp": (dnp.exp, np.exp, 0), "log": (dnp.log, lambda z: 1 / z, 0),
    "log1p": (dnp.log1p, lambda z: 1 / (1 + z), 0), "expm1": (dnp.expm1, np.exp, 0),
    "sqrt": (dnp.sqrt, lambda z: 0.5 / np.sqrt(z), 0), "sin": (dnp.sin, np.cos, 0),
    "cos": (dnp.cos, lambda z: -np.sin(z), 0), "tan": (dnp.tan, lambda z: 1 / np.cos(z) ** 2, 0),
    "arcsin": (dnp.arcsin, lambda z: 1 / _sqrt_1m(z), 0),
    "arccos": (dnp.arccos, lambda z: -1 / _sqrt_1m(z), 0),
    "arctan": (dnp.arctan, lambda z: 1 / (1 + z * z), 0), "sinh": (dnp.sinh, np.cosh, 0),
    "cosh": (dnp.cosh, np.sinh, 0), "tanh": (dnp.tanh, lambda z: 1 / np.cosh(z) ** 2, 0),
    "arcsinh": (dnp.arcsinh, lambda z: 1 / np.sqrt(1 + z * z), 0),
    "arccosh": (dnp.arccosh, lambda z: 1 / (np.sqrt(z - 1) * np.sqrt(z + 1)), 0),
    "arctanh": (dnp.arctanh, lambda z: 1 / (1 - z * z), 0),
    "exp2": (dnp.exp2, lambda z: 2 ** z * math.log(2), 0),
    "log2": (dnp.log2, lambda z: 1 / (z * math.log(2)), 0),
    "log10": (dnp.log10, lambda z: 1 / (z * math.log(10)), 0),
    "reciprocal": (dnp.reciprocal, lambda z: -1 / z ** 2, 0),
    "1/z": (lambda z: 1 / z, lambda z: -1 / z ** 2, 0),
    "square": (dnp.square, lambda z: 2 * z, 0), "z**3": (lambda z: z ** 3, lambda z: 3 * z ** 2, 0),
    "z**-2": (lambda z: z ** -2, lambda z: -2 * z ** -3.0, 0),
    "z**c": (lambda z: z ** (1.5 + 0.5j), lambda z: (1.5 + 0.5j) * z ** (0.5 + 0.5j), 0),
    "c**z": (lambda z: (0.5 + 2j) ** z, lambda z: (0.5 + 2j) ** z * np.log(0.5 + 2j), 0),
    "z**z": (lambda z: z ** z, lambda z: z ** z * (np.log(z) + 1), 0),
    "abs": (dnp.abs, lambda z: np.conj(z) / (2 * np.abs(z)), lambda z: z / (2 * np.abs(z))),
    "abs**2": (lambda z: dnp.abs(z) ** 2, np.conj, lambda z: z),
    "angle": (dnp.angle, lambda z: -0.5j / z, lambda z: 0.5j / np.conj(z)),
    "real": (dnp.real, lambda z: 0.5, lambda z: 0.5),
    "imag": (dnp.imag, lambda z: -0.5j, lambda z: 0.5j),
    "conj": (dnp.conj, lambda z: 0, lambda z: 1),
    "sign": (dnp.sign, lambda z: 1 / (2 * np.abs(z)),
             lambda z: -(z / np.abs(z)) / (2 * np.conj(z))),
    "z/(conj(z)+2)": (lambda z: z / (dnp.conj(z) + 2), lambda z: 1 / (np.conj(z) + 2),
                      lambda z: -z / (np.conj(z) + 2) ** 2),
    "z*conj(z)**2": (lambda z: z * dnp.conj(z) ** 2, lambda z: np.conj(z) ** 2,
                     lambda z: 2 * z * np.conj(z)),
}


@pytest.mark.parametrize("name", list(WIRTINGER))
def test_jvp_vjp_grad_against_wirtinger_derivatives(name):
    f, a_of, b_of = WIRTINGER[name]
    a = np.broadcast_to(a_of(Z), Z.shape) if callable(a_of) else np.zeros(3)
    b = np.broadcast_to(b_of(Z), Z.shape) if callable(b_of) else np.zeros(3)
    out, t = dp.jvp(f, (Z,), (T,))
    np.testing.assert_allclose(t, a * T + b * np.conj(T), rtol=1e-12, atol=1e-14)
    out, vjp_fn = dp.vjp(f, Z)
    c = _ct_for(out)
    np.testing.assert_allclose(vjp_fn(c)[0], a * c + np.conj(b * c), rtol=1e-12, atol=1e-14)
    if not np.iscomplexobj(out):  # a real f: grad is 2 df/dz, also by differences
        g = dp.grad(lambda z: dnp.sum(f(z)))(Z)
        np.testing.assert_allclose(g, 2 * a, rtol=1e-12)
        np.testing.assert_allclose(numerical_grad(lambda z: np.sum(f(z)), Z), 2 * a, rtol=1e-7)
    elif b_of == 0:  # holomorphic: grad(holomorphic=True) is f'(z)
        g = dp.grad(lambda z: dnp.sum(f(z)), holomorphic=True)(Z)
        np.testing.assert_allclose(g, a, rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# check_grads: central differences along the real and imaginary parts, to second order

CASES = {**FUNCS, **EXTRA}


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("name", list(CASES))
def test_check_grads(name, dtype):
    check_grads(CASES[name], (Z.astype(dtype),), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("name", list(CASES))
def test_dtypes_are_kept(name, dtype):
    # complex64 stays complex64 (and real results float32) like float32: outputs as NumPy's,
    # tangents like the outputs, cotangents and gradients like the inputs
    f = CASES[name]
    z = Z.astype(dtype)
    want = np.asarray(f(z)).dtype
    out, t = dp.jvp(f, (z,), (T.astype(dtype),))
    assert np.asarray(out).dtype == want and np.asarray(t).dtype == want
    out, vjp_fn = dp.vjp(f, z)
    assert vjp_fn(_ct_for(out).astype(want))[0].dtype == dtype
    g = dp.grad(lambda z: dnp.sum(dnp.abs(f(z)) ** 2))(z)
    assert g.dtype == dtype


@pytest.mark.parametrize("name", list(CASES))
def test_jit_of_grad_is_eager_grad(name):
    f = CASES[name]
    if name == "real_if_close":
        return _real_if_close_under_jit()
    loss = lambda z: dnp.sum(dnp.abs(f(z)) ** 2)
    np.testing.assert_allclose(dp.jit(dp.grad(loss))(Z), dp.grad(loss)(Z), rtol=1e-12)
    out = f(Z)
    if np.iscomplexobj(out):
        hol = lambda z: dnp.sum(f(z))
        np.testing.assert_allclose(dp.jit(dp.grad(hol, holomorphic=True))(Z),
                                   dp.grad(hol, holomorphic=True)(Z), rtol=1e-12)


def _real_if_close_under_jit():
    # the result's dtype depends on the values: not known under jit
    with pytest.raises(TypeError):
        dp.jit(lambda z: dnp.real_if_close(z))(Z)


def test_real_and_complex_arguments_together():
    x = np.array([0.5, -1.5, 2.0])
    f = lambda x, z: dnp.sum(dnp.abs(dnp.sin(x * z)) ** 2 + dnp.real(z) * x)
    check_grads(f, (x, Z), order=2, modes=("fwd", "rev"))
    gx, gz = dp.grad(f, argnums=(0, 1))(x, Z)
    assert gx.dtype == np.float64 and gz.dtype == np.complex128
    nx, nz = numerical_grad(lambda a: f(*a), (x, Z))
    np.testing.assert_allclose(gx, nx, rtol=1e-7)
    np.testing.assert_allclose(gz, nz, rtol=1e-7)
    gx, gz = dp.grad(f, argnums=(0, 1))(x.astype(np.float32), Z.astype(np.complex64))
    assert gx.dtype == np.float32 and gz.dtype == np.complex64


# ----------------------------------------------------------------------------------------------
# holomorphic=True

HOLO = {  # f, f', f''
    "z**3": (lambda z: z ** 3, lambda z: 3 * z ** 2, lambda z: 6 * z),
    "exp": (dnp.exp, np.exp, np.exp),
    "sin": (dnp.sin, np.cos, lambda z: -np.sin(z)),
    "1/z": (lambda z: 1 / z, lambda z: -1 / z ** 2, lambda z: 2 / z ** 3),
}
Z0 = np.complex128(0.6 - 0.8j)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("name", list(HOLO))
def test_holomorphic(name, dtype):
    f, d1, d2 = HOLO[name]
    tol = dict(rtol=1e-12) if dtype == np.complex128 else dict(rtol=2e-6)
    z0, z = dtype(Z0), Z.astype(dtype)
    g = dp.grad(f, holomorphic=True)(z0)
    assert g.dtype == dtype
    np.testing.assert_allclose(g, d1(Z0), **tol)
    value, g = dp.value_and_grad(f, holomorphic=True)(z0)
    np.testing.assert_allclose((value, g), (f(Z0), d1(Z0)), **tol)
    for jac in (dp.jacfwd, dp.jacrev):
        j = jac(f, holomorphic=True)(z)
        assert j.dtype == dtype
        np.testing.assert_allclose(j, np.diag(d1(Z)), **tol, atol=1e-6)
        np.testing.assert_allclose(jac(f, holomorphic=True)(z0), d1(Z0), **tol)
    h = dp.hessian(f, holomorphic=True)(z0)
    assert h.dtype == dtype
    np.testing.assert_allclose(h, d2(Z0), **tol)
    h = dp.hessian(lambda z: dnp.sum(f(z)), holomorphic=True)(z)
    np.testing.assert_allclose(h, np.diag(d2(Z)), **tol, atol=1e-5)
    # second derivative by grad of grad, and under jit
    np.testing.assert_allclose(
        dp.grad(dp.grad(f, holomorphic=True), holomorphic=True)(z0), d2(Z0), **tol)
    np.testing.assert_allclose(dp.jit(dp.hessian(f, holomorphic=True))(z0), d2(Z0), **tol)


def test_holomorphic_with_several_arguments():
    f = lambda z, w: z * dnp.exp(w)
    gz, gw = dp.grad(f, argnums=(0, 1), holomorphic=True)(Z0, 1j)
    np.testing.assert_allclose([gz, gw], [np.exp(1j), Z0 * np.exp(1j)], rtol=1e-14)
    jz, jw = dp.jacrev(f, argnums=(0, 1), holomorphic=True)(Z, Z[::-1])
    np.testing.assert_allclose(jw, np.diag(Z * np.exp(Z[::-1])), rtol=1e-14)


# ----------------------------------------------------------------------------------------------
# errors


def test_grad_of_complex_output_says_to_pass_holomorphic():
    with pytest.raises(TypeError, match=r"complex128.*holomorphic=True.*real part or abs"):
        dp.grad(lambda z: z ** 3)(Z0)
    with pytest.raises(TypeError, match=r"value_and_grad.*holomorphic=True"):
        dp.value_and_grad(lambda x: x * 1j)(1.0)


def test_holomorphic_needs_complex_inputs_and_outputs():
    for transform in (dp.grad, dp.value_and_grad, dp.jacfwd, dp.jacrev, dp.hessian):
        with pytest.raises(TypeError, match=r"holomorphic=True requires complex inputs.*float64"):
            transform(lambda x: x * 1j, holomorphic=True)(1.0)
    for transform in (dp.grad, dp.value_and_grad, dp.jacfwd, dp.jacrev, dp.hessian):
        with pytest.raises(TypeError, match=r"holomorphic=True requires (a )?complex output"):
            transform(dnp.abs, holomorphic=True)(Z0)


def test_jacobians_of_complex_inputs_need_holomorphic():
    # a real basis would give only the derivative along the real axis ([[2+0j]] here)
    with pytest.raises(TypeError, match=r"jacfwd requires real inputs.*holomorphic=True"):
        dp.hessian(lambda z: dnp.abs(z) ** 2)(1j)
    for jac in (dp.jacfwd, dp.jacrev):
        with pytest.raises(TypeError, match=r"requires real inputs.*complex128.*holomorphic"):
            jac(lambda z: z ** 3)(Z)
        with pytest.raises(TypeError, match=r"requires real inputs.*complex64"):
            jac(dnp.abs)(Z.astype(np.complex64))
    # the real-to-complex Jacobian: by jacfwd, which keeps the imaginary part; jacrev refuses
    x = np.array([0.5, 2.0])
    np.testing.assert_allclose(dp.jacfwd(lambda x: dnp.exp(1j * x))(x),
                               np.diag(1j * np.exp(1j * x)), rtol=1e-15)
    with pytest.raises(TypeError, match=r"jacrev.*complex outputs.*use jacfwd"):
        dp.jacrev(lambda x: dnp.exp(1j * x))(x)
    # grad of a real function of complex inputs needs nothing
    np.testing.assert_allclose(dp.grad(lambda z: dnp.sum(dnp.abs(z) ** 2))(Z), 2 * np.conj(Z))


# ----------------------------------------------------------------------------------------------
# the oracle perturbs real and imaginary parts independently


def test_check_grads_catches_a_rule_right_along_the_real_axis_only():
    wrong = dp.custom_jvp(lambda z: dnp.conj(z))
    # d conj(z) = conj(dz): "dz" agrees along the real axis and is wrong along the imaginary
    wrong.defjvp(lambda primals, tangents: (dnp.conj(primals[0]), tangents[0]))
    check_grads(wrong, (Z.real.copy(),), order=1, modes=("fwd",))  # real inputs: right
    with pytest.raises(AssertionError, match="along the imag parts"):
        check_grads(wrong, (Z,), order=1, modes=("fwd",))
    wrong_vjp = dp.custom_vjp(lambda z: dnp.conj(z))
    wrong_vjp.defvjp(lambda z: (dnp.conj(z), None), lambda res, ct: (ct,))
    with pytest.raises(AssertionError, match="reverse mode.*along the imag parts"):
        check_grads(wrong_vjp, (Z,), order=1, modes=("rev",))


def test_numerical_grad_of_complex_inputs():
    np.testing.assert_allclose(numerical_grad(lambda z: np.sum(np.abs(z) ** 2), Z),
                               2 * np.conj(Z), rtol=1e-8)
    g = numerical_grad(lambda z: np.sum(np.abs(z) ** 2), Z.astype(np.complex64))
    assert g.dtype == np.complex64
    np.testing.assert_allclose(numerical_grad(lambda z: z ** 3, Z0, holomorphic=True),
                               3 * Z0 ** 2, rtol=1e-8)
    with pytest.raises(TypeError, match="holomorphic=True"):
        numerical_grad(lambda z: z ** 3, Z0)


# ----------------------------------------------------------------------------------------------
# angle, real_if_close, sign


def test_angle():
    np.testing.assert_allclose(dp.jvp(dnp.angle, (Z,), (T,))[0], np.angle(Z), rtol=1e-15)
    out = dp.jvp(lambda z: dnp.angle(z, deg=True), (Z,), (T,))[0]
    np.testing.assert_allclose(out, np.angle(Z, deg=True), rtol=1e-15)
    assert dp.jvp(dnp.angle, (Z.astype(np.complex64),), (T.astype(np.complex64),))[0].dtype \
        == np.float32
    np.testing.assert_allclose(dp.grad(lambda z: dnp.sum(dnp.angle(z)))(Z), -1j / Z,
                               rtol=1e-14)
    # a real input: 0 or pi, no derivative (as arctan2(0, x))
    x = np.array([-2.0, 3.0])
    out, t = dp.jvp(dnp.angle, (x,), (np.ones(2),))
    np.testing.assert_array_equal(out, [np.pi, 0.0])
    np.testing.assert_array_equal(t, [0.0, 0.0])
    assert dnp.angle(1j) == np.angle(1j)


def test_real_if_close():
    z = np.array([1.0 + 1e-15j, 2.0 - 1e-16j])
    out, t = dp.jvp(dnp.real_if_close, (z,), (T[:2],))
    assert out.dtype == np.float64 and t.dtype == np.float64
    np.testing.assert_array_equal(t, T[:2].real)
    out, t = dp.jvp(dnp.real_if_close, (Z,), (T,))
    assert out.dtype == np.complex128
    np.testing.assert_array_equal(t, T)
    out, t = dp.jvp(lambda z: dnp.real_if_close(z, tol=1e-3), (z + 1e-4j,), (T[:2],))
    assert out.dtype == np.float64
    assert complex(dp.grad(lambda z: dnp.real_if_close(z * z))(np.complex128(3.0))) == 6.0
    np.testing.assert_array_equal(dnp.real_if_close(z), np.real_if_close(z))


def test_sign_of_complex_is_z_over_abs():
    z = np.array([3 + 4j, 0j, -2j])
    out, t = dp.jvp(dnp.sign, (z,), (np.ones(3, complex),))
    np.testing.assert_allclose(out, np.sign(z), rtol=1e-15)
    assert t[1] == 0  # at 0: no derivative, as for abs
    np.testing.assert_array_equal(dp.jvp(dnp.sign, (np.array([-2.0, 3.0]),), (np.ones(2),))[1],
                                  [0.0, 0.0])
