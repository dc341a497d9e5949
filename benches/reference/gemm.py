"""Reference GEMM: numpy's matmul (OpenBLAS), single- and multi-threaded.

Run as `OPENBLAS_NUM_THREADS=1 python3 gemm.py 256 512` (the thread count
is fixed when numpy loads). Prints `gemm <label> <n> <GFLOP/s>`.
"""
import os, sys, time
import numpy as np

label = sys.argv[1]
for n in map(int, sys.argv[2:]):
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    best, start, runs = float("inf"), time.perf_counter(), 0
    while runs < 2 or time.perf_counter() - start < 1.0:
        t = time.perf_counter(); a @ a; best = min(best, time.perf_counter() - t); runs += 1
    print(f"gemm {label} {n} {2 * n**3 / best / 1e9:.1f}")
