"""The benchmark suite: diffprog beside NumPy, autograd, JAX and PyTorch on the same workloads.

Run ``python -m benchmarks`` (``--quick`` for a smoke run, ``--help`` for the options); see
``benchmarks/run.py``. This package imports nothing at load time so that the runner can set the
thread count before NumPy, JAX or PyTorch start their thread pools.
"""
