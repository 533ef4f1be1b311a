"""The public names of the diffprog.numpy modules that load on first use, listed here so that
``import diffprog`` need not import them (issue 17: ``import diffprog`` under 1.2x ``import
numpy``). diffprog.numpy's ``__getattr__`` imports a module when one of its names is first read,
and a traced value's ``np.*`` call to a function or ufunc with no rule registered yet imports
them all (diffprog/numpy/_dispatch.py). Each module takes its ``__all__`` from here.
"""

# diffprog/numpy/_names.py
NAMES = [
    # constructors and dtype names (NumPy's own objects)
    "zeros", "ones", "empty", "full", "arange", "eye", "identity", "tri", "indices",
    "diag_indices", "tril_indices", "triu_indices", "int8", "int16", "int32", "int64", "uint8",
    "uint16", "uint32", "uint64", "float16", "complex64", "complex128", "bool_", "dtype",
    "finfo", "iinfo", "isscalar", "iscomplexobj", "isrealobj", "promote_types", "can_cast",
    # NumPy 2 names
    "acos", "asin", "atan", "acosh", "asinh", "atanh", "atan2", "pow", "cumulative_sum",
    "cumulative_prod", "matvec", "vecmat",
    # NaN-aware reductions
    "nanmax", "nanmin", "nanargmax", "nanargmin", "nanprod", "nancumsum", "nancumprod",
    "nanvar", "nanstd", "nanmedian", "nanquantile", "nanpercentile",
    # elementwise tests and functions
    "heaviside", "copysign", "isclose", "allclose", "array_equal", "isneginf", "isposinf",
    "isreal", "iscomplex", "fix", "ldexp", "modf",
    # arrays and polynomials
    "diagflat", "vander", "ediff1d", "polyadd", "polysub", "polymul", "polyder", "polyint",
    "sort_complex", "cov", "corrcoef", "resize",
    # selection, counting, phases
    "isin", "digitize", "bincount", "histogram", "compress", "extract", "choose",
    "put_along_axis", "unwrap", "argpartition", "piecewise", "i0",
]

# diffprog/numpy/_more.py
MORE = ["cross", "diff", "gradient", "sinc", "linspace", "logspace", "geomspace", "nan_to_num",
        "r_", "c_", "insert", "delete", "vsplit", "hsplit", "dsplit", "rollaxis", "partition",
        "trapezoid", "interp", "polyval", "polyfit", "vecdot", "convolve", "correlate"]

# module -> its names
MODULES = {"._names": NAMES, "._more": MORE}
