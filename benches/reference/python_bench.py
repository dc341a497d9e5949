# Python Core microbenchmark, one script for both sides: run by CPython with
# Ray 2.60 (`python python_bench.py WORKLOAD`), and built into a wray job
# (`wray build python_bench.py`, `wray run python_bench.wasm -- WORKLOAD`),
# where `import ray` fails and wray takes its place. benches/python.sh runs
# both in one sitting and prints the table.
#
# Each workload prints one JSON line: {"workload", "value", "unit"}.
# Shapes follow `ray microbenchmark` (ray._private.ray_perf): timed loops
# after a warm-up, rates per second.
import json
import sys
import time

try:
    import ray

    RAY = True
except ImportError:
    import wray as ray

    RAY = False


@ray.remote
def small_value():
    return b"ok"


@ray.remote
class Actor:
    def small_value(self):
        return b"ok"


def report(workload, value, unit):
    print(json.dumps({"workload": workload, "value": value, "unit": unit}), flush=True)


def timed(n, f):
    f()  # warm-up
    start = time.perf_counter()
    for _ in range(n):
        f()
    return n / (time.perf_counter() - start)


def main():
    args = sys.argv[1:]
    workload = args[0] if args else "all"
    if RAY:
        ray.init(include_dashboard=False, logging_level="ERROR")
    if workload == "first":
        # Process start to the first task's result: the caller measures
        # from launching the process to this line.
        ray.get(small_value.remote())
        report("first", 0, "printed")
        return
    if workload == "idle":
        # The caller samples the memory of every process of the job while
        # this sleeps.
        ray.get(small_value.remote())
        report("idle", 0, "ready")
        time.sleep(float(args[1]) if len(args) > 1 else 5.0)
        return
    if workload in ("all", "tasks_sync"):
        report("tasks_sync", timed(300, lambda: ray.get(small_value.remote())), "/s")
    if workload in ("all", "tasks_async"):
        report("tasks_async", timed(3, lambda: ray.get([small_value.remote() for _ in range(1000)])) * 1000, "/s")
    a = Actor.remote()
    ray.get(a.small_value.remote())
    if workload in ("all", "actor_sync"):
        report("actor_sync", timed(500, lambda: ray.get(a.small_value.remote())), "/s")
    if workload in ("all", "actor_async"):
        report("actor_async", timed(3, lambda: ray.get([a.small_value.remote() for _ in range(1000)])) * 1000, "/s")


if __name__ == "__main__":
    main()
