"""Reference GEMM: numpy's matmul (OpenBLAS) with a given number of threads.

`python3 gemm.py THREADS N...` prints `gemm openblas-THREADS <n> <GFLOP/s>`
(the best of the runs in one second, as the Rust side measures).
"""
import sys, time
import numpy as np
from threadpoolctl import threadpool_limits

threads = int(sys.argv[1])
with threadpool_limits(threads):
    for n in map(int, sys.argv[2:]):
        a = np.random.default_rng(0).random((n, n), dtype=np.float32)
        a @ a
        best, start, runs = float("inf"), time.perf_counter(), 0
        while runs < 2 or time.perf_counter() - start < 1.0:
            t = time.perf_counter(); a @ a; best = min(best, time.perf_counter() - t); runs += 1
        print(f"gemm openblas-{threads}-thread {n} {2 * n**3 / best / 1e9:.1f}")
