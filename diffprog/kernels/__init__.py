"""Compiled execution of graphs: fused elementwise kernels built with numba.

Nothing here imports numba at import time: ``import diffprog`` stays near NumPy's import cost,
and numba loads when the first kernel is compiled. Submodules that need numba (``fastmath``)
import it at their top and are themselves imported only by the kernel compiler.
"""
