# Monte Carlo pi in Python: tasks sample random points in the unit square
# and count those inside the quarter circle; the driver adds the counts.
#
#   wray build examples/python/pi.py
#   wray run examples/python/pi.wasm -- 20 100000   # tasks, samples per task
import random
import sys
import time

import wray


@wray.remote
def sample(samples, seed):
    rng = random.Random(seed)
    inside = 0
    for _ in range(samples):
        x, y = rng.random(), rng.random()
        if x * x + y * y <= 1.0:
            inside += 1
    return inside


def main():
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    samples = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    start = time.time()
    refs = [sample.remote(samples, seed) for seed in range(tasks)]
    inside = sum(wray.get(refs))
    pi = 4.0 * inside / (tasks * samples)
    print(f"{tasks} tasks x {samples} samples: pi ~ {pi:.5f} in {time.time() - start:.2f} s")
