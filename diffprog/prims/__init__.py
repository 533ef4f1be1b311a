"""All primitives, one family a module. Importing this package declares them all."""

from . import elementwise, fft, gather, index, linalg, reduce, shape  # noqa: F401
from .elementwise import *  # noqa: F403
from .index import *  # noqa: F403
from .linalg import *  # noqa: F403
from .reduce import *  # noqa: F403
from .shape import *  # noqa: F403
