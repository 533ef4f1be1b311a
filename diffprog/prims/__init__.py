"""All primitives, one family a module. Importing this package declares them all but the FFT's
(:mod:`diffprog.prims.fft`), which :mod:`diffprog.numpy.fft` imports on first use: it loads
numpy.fft, which ``import numpy`` does not."""

from . import elementwise, gather, index, linalg, reduce, shape  # noqa: F401
from .elementwise import *  # noqa: F403
from .index import *  # noqa: F403
from .linalg import *  # noqa: F403
from .reduce import *  # noqa: F403
from .shape import *  # noqa: F403
