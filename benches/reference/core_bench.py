"""Ray's side of `benches/core.sh`: the Core rows of `wray microbenchmark`,
measured on Ray in the same run, printed as one JSON object per line
({"guest": ..., "value": ..., "unit": ..., "note": ...}) for
`wray microbenchmark --ray FILE` to set beside wray's figures.

The shapes are `ray microbenchmark`'s (ray/_private/ray_perf.py) where wray
has the same workload, and the rows of issue 20 otherwise. Like Ray's own
`timeit`, each row warms up for a second and then reports the mean of a few
timed windows; the windows are shorter than Ray's (1.5 s instead of 2 s,
one second of settling instead of ten) so that the whole run stays within a
few minutes on 2 cores.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import ray

WINDOWS = 3
WINDOW_SECS = 1.5


def emit(guest, value, unit, note):
    print(json.dumps({"guest": guest, "value": value, "unit": unit, "note": note}), flush=True)


def timeit(fn, multiplier=1):
    """Calls per second of `fn` times `multiplier`, as ray_perf's timeit."""
    time.sleep(1)
    start = time.perf_counter()
    count = 0
    while time.perf_counter() - start < 1:
        fn()
        count += 1
    step = count // 10 + 1
    rates = []
    for _ in range(WINDOWS):
        start = time.perf_counter()
        count = 0
        while time.perf_counter() - start < WINDOW_SECS:
            for _ in range(step):
                fn()
            count += step
        rates.append(multiplier * count / (time.perf_counter() - start))
    return float(np.mean(rates))


@ray.remote
def noop():
    pass


@ray.remote
def inc(x):
    return x + 1


@ray.remote
def items(n):
    for i in range(n):
        yield i


@ray.remote
class Sink:
    def noop(self):
        pass


@ray.remote(num_cpus=0.5)
def actor_client(calls):
    sink = Sink.remote()
    ray.get([sink.noop.remote() for _ in range(calls)])
    return calls


def task_and_actor_rows(prefix, task, actor, notes):
    """ray_perf's four shapes — tasks and calls to one actor, one at a
    time and in batches of 1,000 — as rows `{prefix}tasks_sync`,
    `{prefix}tasks_async`, `{prefix}actor_sync` and `{prefix}actor_async`
    with these four notes. `task` and `actor` are `noop` and `Sink`, with
    any options already applied."""
    ray.get(task.remote())
    a = actor.remote()
    ray.get(a.noop.remote())
    for name, call, one, many in [("tasks", task.remote, *notes[:2]), ("actor", a.noop.remote, *notes[2:])]:
        emit(f"{prefix}{name}_sync", timeit(lambda: ray.get(call())), "/s", one)
        emit(f"{prefix}{name}_async", timeit(lambda: ray.get([call() for _ in range(1000)]), 1000), "/s", many)
    ray.kill(a)


def core_rows():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    task_and_actor_rows(
        "",
        noop,
        Sink,
        (
            "ray_perf: single client tasks sync",
            "ray_perf: single client tasks async (batches of 1,000)",
            "ray_perf: 1:1 actor calls sync",
            "ray_perf: 1:1 actor calls async (batches of 1,000)",
        ),
    )

    # wray's n:n row: 4 client tasks, each with its own actor, 2,500 calls each.
    emit(
        "actor_nn_async",
        timeit(lambda: ray.get([actor_client.remote(2500) for _ in range(4)]), 10_000),
        "/s",
        "4 client tasks, each calling its own actor 2,500 times",
    )

    value = ray.put(0)
    emit("put_calls", timeit(lambda: ray.put(0)), "/s", "ray_perf: single client put calls (Plasma Store)")
    emit("get_calls", timeit(lambda: ray.get(value)), "/s", "ray_perf: single client get calls (Plasma Store)")

    # wray's row puts a 100 MiB buffer; ray_perf puts 800 MB. The same size
    # as wray's is used here.
    arr = np.zeros(100 << 20, dtype=np.uint8)
    ray.put(arr)
    emit(
        "put_gigabytes",
        timeit(lambda: ray.put(arr), (100 << 20) / 1e9),
        "GB/s",
        "ray.put of a 100 MiB numpy array",
    )

    def chain():
        r = inc.remote(0)
        for _ in range(999):
            r = inc.remote(r)
        assert ray.get(r) == 1000

    links_per_s = timeit(chain, 1000)
    emit("chain", 1e3 / links_per_s, "ms/link", "1,000 dependent tasks, then get the last")

    def wait_1k():
        not_ready = [noop.remote() for _ in range(1000)]
        for _ in range(1000):
            _, not_ready = ray.wait(not_ready)

    emit("wait_1k", timeit(wait_1k), "/s", "ray_perf: single client wait 1k refs (rounds per second)")

    def generator_items():
        for ref in items.remote(1000):
            ray.get(ref)

    emit(
        "generator_items",
        timeit(generator_items, 1000),
        "/s",
        "a generator task of 1,000 items, each read with ray.get as it comes (items per second)",
    )
    ray.shutdown()

    ray.init(num_cpus=2, resources={"custom": 100}, include_dashboard=False, logging_level="ERROR")

    def placement_groups():
        pgs = [ray.util.placement_group(bundles=[{"custom": 0.001}]) for _ in range(100)]
        for pg in pgs:
            pg.wait(timeout_seconds=30)
        for pg in pgs:
            ray.util.remove_placement_group(pg)

    emit("placement_groups", timeit(placement_groups, 100), "/s", "ray_perf: placement group create/removal")
    ray.shutdown()


@ray.remote(num_cpus=0)
def arrive(*objects):
    """Touches nothing: what a task costs when its argument only has to
    arrive (Ray fetches a top-level argument into the task's node before it
    runs)."""
    return len(objects)


@ray.remote
def make(size):
    return np.full(size, 7, dtype=np.uint8)


def median_transfer(fresh, size, base_of):
    """Median GB/s of three transfers of a fresh object each (Ray keeps a
    copy on a node that fetched one, which a second task there would
    reuse), minus the time of the same task with an empty object."""
    small = ray.put(np.zeros(0, dtype=np.uint8))
    ray.get(base_of(small))
    base = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        ray.get(base_of(small))
        base = min(base, time.perf_counter() - start)
    rates = []
    for _ in range(3):
        obj = fresh()
        start = time.perf_counter()
        ray.get(base_of(obj))
        rates.append(size / (time.perf_counter() - start - base) / 1e9)
        del obj
    runs = ", ".join(f"{r:.2f}" for r in rates)
    return sorted(rates)[1], runs


def cluster_rows():
    """The rows of `wray microbenchmark --cluster` that have a Ray
    counterpart, on a Ray cluster of three nodes on this machine
    (`ray.cluster_utils.Cluster`: a head running the driver, a node with
    `remote` where the tasks and the actor go, a node with `maker`), each
    with 2 CPUs and 4 GiB of object store, as wray's."""
    from ray.cluster_utils import Cluster

    store = 4 << 30
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "object_store_memory": store, "include_dashboard": False},
    )
    cluster.add_node(num_cpus=2, resources={"remote": 1_000_000}, object_store_memory=store)
    cluster.add_node(num_cpus=2, resources={"maker": 1}, object_store_memory=store)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="ERROR")
    on_remote = {"resources": {"remote": 1}}
    task_and_actor_rows(
        "remote_",
        noop.options(**on_remote),
        Sink.options(**on_remote),
        (
            "a task on another node, one at a time",
            "tasks on another node, batches of 1,000",
            "calls to an actor on another node",
            "calls to an actor on another node, batches of 1,000",
        ),
    )

    size = 1 << 30
    to_remote = arrive.options(resources={"remote": 1})
    value, runs = median_transfer(
        lambda: ray.put(np.full(size, 7, dtype=np.uint8)), size, lambda obj: to_remote.remote(obj)
    )
    emit(
        "transfer",
        value,
        "GB/s",
        f"1 GiB ray.put on the head, a task on the other node takes it as its argument; median of three, "
        f"a fresh object each (GB/s in order: {runs})",
    )

    def made():
        obj = make.options(resources={"maker": 1}).remote(size)
        ray.wait([obj], fetch_local=False)
        return obj

    value, runs = median_transfer(made, size, lambda obj: to_remote.remote(obj))
    emit(
        "handoff",
        value,
        "GB/s",
        f"1 GiB made by a task on one node, taken by a task on another; median of three, a fresh object each "
        f"(GB/s in order: {runs})",
    )
    ray.shutdown()
    cluster.shutdown()


FIRST = """
import ray
ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
@ray.remote
def inc(x):
    return x + 1
assert ray.get(inc.remote(1)) == 2
"""


def first_result():
    """A whole Python process: import ray, start the local cluster, one task."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", FIRST], check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    emit("first", best * 1e3, "ms", "python -c: import ray, ray.init(), one task, best of 3")


def ray_cli():
    return os.path.join(os.path.dirname(sys.executable), "ray")


def head_start():
    """`ray start --head` until the command returns (the cluster is up)."""
    best = float("inf")
    for _ in range(2):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, RAY_TMPDIR=tmp)
            start = time.perf_counter()
            subprocess.run(
                [ray_cli(), "start", "--head", "--port", "0", "--num-cpus", "2", "--include-dashboard", "false"],
                check=True,
                capture_output=True,
                env=env,
            )
            best = min(best, time.perf_counter() - start)
            subprocess.run([ray_cli(), "stop", "--force"], capture_output=True, env=env)
    emit("head_start", best * 1e3, "ms", "`ray start --head` until it returns, best of 2")


def rss_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def session_pids(root):
    """`root` and every process descended from it (Ray's GCS, raylet, workers)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


IDLE = """
import ray, time
ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
@ray.remote
def noop():
    pass
ray.get(noop.remote())
print("ready", flush=True)
time.sleep(30)
"""


def idle_rss():
    """A driver with a local cluster started, idle: every process it started."""
    child = subprocess.Popen([sys.executable, "-c", IDLE], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        child.stdout.readline()
        time.sleep(2)
        total = sum(rss_of(p) for p in session_pids(child.pid))
    finally:
        child.kill()
        child.wait()
        subprocess.run([ray_cli(), "stop", "--force"], capture_output=True)
    emit("idle", total / (1 << 20), "MiB", "driver + GCS + raylet + workers it started, idle after one task")


if __name__ == "__main__":
    only = sys.argv[1:]
    for name, fn in [
        ("core", core_rows),
        ("first", first_result),
        ("head", head_start),
        ("idle", idle_rss),
        ("cluster", cluster_rows),
    ]:
        if not only or name in only:
            fn()
