# Actors and the rest of the Core API from Python: a named Counter actor, handles passed to
# tasks, nested tasks, wait, put, errors with their remote traceback (also instances of what
# the task raised), cancel, the time and memory limits, kill, a placement group, SPREAD, affinity.
#
#   wray build examples/python/counter.py
#   wray run examples/python/counter.wasm
import time

import wray as ray
from wray.util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy


@ray.remote
class Counter:
    def __init__(self, start):
        self.value = start

    def incr(self, by=1):
        self.value += by
        return self.value

    def get(self):
        return self.value


@ray.remote
def add_from_task(counter, n):
    # A handle passed to a task: its calls go to the same actor.
    return ray.get([counter.incr.remote() for _ in range(n)])[-1]


@ray.remote
def square(x):
    return x * x


@ray.remote
def sum_of_squares(n):
    # A task that submits tasks.
    return sum(ray.get([square.remote(i) for i in range(n)]))


@ray.remote
def divide(a, b):
    return a / b


@ray.remote
def slow(seconds):
    time.sleep(seconds)
    return seconds


@ray.remote
def hog(mib):
    return len(bytearray(mib << 20))


class Overdrawn(Exception):
    def __init__(self, balance):
        super().__init__(f"overdrawn by {balance}")


@ray.remote
def withdraw(balance, amount):
    if amount > balance:
        raise Overdrawn(amount - balance)
    return balance - amount


@ray.remote(num_cpus=0.5)
def assigned():
    return ray.get_runtime_context().get_assigned_resources()


@ray.remote(num_returns=3)
def three(x):
    return x, x + 1, x + 2


@ray.remote
class Pair:
    @ray.method(num_returns=2)
    def split(self, x):
        return x, 2 * x


@ray.remote
class Session:
    def close(self):
        ray.actor.exit_actor()  # ends this actor for good, as in Ray

    def ping(self):
        return "pong"

    def me(self):
        return ray.get_runtime_context().current_actor

    def name(self):
        return ray.get_runtime_context().get_actor_name()


if __name__ == "__main__":
    c = Counter.options(name="counter").remote(10)
    print("incr:", ray.get(c.incr.remote()), ray.get(c.incr.remote(by=5)))
    print("from a task:", ray.get(add_from_task.remote(c, 3)))
    same = ray.get_actor("counter")
    print("by name:", ray.get(same.get.remote()))
    print("one actor, two handles:", same == c, len({same, c}))

    print("nested tasks:", ray.get(sum_of_squares.remote(10)))

    a, b, c3 = three.remote(1)
    # Kept in a variable: as in Ray, an actor ends with its last handle.
    splitter = Pair.options(name="pair").remote()
    print("num_returns:", ray.get(b), ray.get([a, c3]), ray.get(splitter.split.remote(19)))
    print("num_returns through get_actor:", ray.get(ray.get_actor("pair").split.remote(3)))
    print("named actors:", ray.util.list_named_actors(), ray.util.list_named_actors(all_namespaces=True)[0])
    pair = square.options(num_returns=2).remote(3)
    try:
        ray.get(pair[0])
    except ValueError as e:
        print("num_returns, a wrong count:", str(e).splitlines()[-1])
    print("num_returns=0:", three.options(num_returns=0).remote(1))

    big = ray.put(list(range(1000)))
    print("put, then a task on it:", ray.get(square.remote(len(ray.get(big)))))
    nested = ray.put({"inner": big})
    print("a ref inside a value:", sum(ray.get(ray.get(nested)["inner"])))

    fast, slower = slow.remote(0.0), slow.remote(2.0)
    ready, not_ready = ray.wait([slower, fast], num_returns=1, timeout=1.5)
    print("wait:", [ray.get(r) for r in ready], len(not_ready), "not ready")

    try:
        ray.get(divide.remote(1, 0))
    except ray.exceptions.RayTaskError as e:
        print("task error:", str(e).splitlines()[-1])
        print("traceback names the function:", 'File "counter.py", line 45, in divide' in str(e))
    # As in Ray, the error is also an instance of the exception the task raised.
    try:
        ray.get(divide.remote(1, 0))
    except ZeroDivisionError as e:
        print("caught as its cause:", type(e).__name__, isinstance(e, ray.exceptions.RayTaskError))
        print("its cause, rebuilt:", type(e.cause).__name__, e.cause.args)
    try:
        ray.get(withdraw.remote(10, 25))
    except Overdrawn as e:
        print("the script's own exception:", type(e).__name__, str(e).splitlines()[-1])

    try:
        ray.get(slower, timeout=0.1)
    except ray.exceptions.GetTimeoutError:
        print("get timed out")

    doomed = slow.remote(30.0)
    ray.cancel(doomed)
    try:
        ray.get(doomed)
    except ray.exceptions.TaskCancelledError:
        print("cancelled")

    try:
        ray.get(slow.options(time_limit_ms=300).remote(30.0))
    except ray.exceptions.RayTaskError as e:
        print("time limit:", "time limit exceeded" in str(e))
    try:
        ray.get(hog.options(memory=128 << 20).remote(400))
    except ray.exceptions.OutOfMemoryError as e:
        print("memory limit:", "memory limit exceeded" in str(e), isinstance(e, ray.exceptions.RayTaskError))
    print("within the limit:", ray.get(hog.options(memory=256 << 20).remote(16)))

    ray.kill(c)
    try:
        ray.get(c.get.remote())
    except ray.exceptions.RayActorError:
        print("killed actor: RayActorError")
    # Ray's graceful end: after the calls queued before it.
    ending = Counter.remote(0)
    before = [ending.incr.remote(by=10) for _ in range(2)]
    ending.__ray_terminate__.remote()
    try:
        ray.get(ending.get.remote())
    except ray.exceptions.RayActorError:
        print("__ray_terminate__: calls before it:", ray.get(before), "then RayActorError")
    print("named after the kill:", ray.util.list_named_actors())
    session = Session.remote()
    print("session:", ray.get(session.ping.remote()))
    try:
        ray.get(session.close.remote())
    except ray.exceptions.RayActorError:
        print("exit_actor: RayActorError")
    try:
        ray.actor.exit_actor()
    except TypeError as e:
        print("exit_actor outside an actor:", e)

    pg = ray.util.placement_group([{"CPU": 1}, {"CPU": 1}], strategy="PACK")
    ray.get(pg.ready())
    in_group = square.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 1))
    print("in a placement group:", ray.get(in_group.remote(7)))
    ray.util.remove_placement_group(pg)
    # SPREAD: on a cluster, the nodes with room in turn (here, one node).
    print("spread:", ray.get(square.options(scheduling_strategy="SPREAD").remote(8)))
    # Node affinity: the node with this id (here, the job's own node);
    # hard to a node that is not there fails, soft runs anyway.
    here = ray.get_runtime_context().get_node_id()
    pinned = square.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))
    print("pinned to this node:", ray.get(pinned.remote(9)))
    nowhere = NodeAffinitySchedulingStrategy("node-nowhere", soft=False)
    try:
        ray.get(square.options(scheduling_strategy=nowhere).remote(1))
    except ray.exceptions.InvalidArgumentError as e:
        print("pinned to a missing node:", "not a live node" in str(e))
    soft = NodeAffinitySchedulingStrategy("node-nowhere", soft=True)
    print("soft affinity to a missing node:", ray.get(square.options(scheduling_strategy=soft).remote(10)))
    try:
        square.options(scheduling_strategy="EVENLY").remote(1)
    except ValueError as e:
        print("bad strategy:", e)

    print("CPUs:", ray.cluster_resources().get("CPU"))
    listed = ray.nodes()
    print("nodes:", [(n["IsHead"], n["Alive"], n["Resources"].get("CPU"), n["NodeManagerAddress"]) for n in listed])
    print("node IP:", ray.util.get_node_ip_address())
    print("assigned:", ray.get_runtime_context().get_assigned_resources(), ray.get(assigned.remote()))
    host = Session.remote()
    itself = ray.get(host.me.remote())
    print("current_actor:", itself == host, ray.get(itself.ping.remote()))
    named = Session.options(name="session").remote()
    print("actor names:", ray.get(named.name.remote()), ray.get(host.name.remote()))
    try:
        ray.get_runtime_context().current_actor
    except RuntimeError as e:
        print("current_actor in the driver:", e)
