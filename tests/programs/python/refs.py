# When a Python job's refs release their objects: as soon as the last
# reference dies, also inside a reference cycle (once collected), also for
# refs the job passed to tasks or nested in values. Each handle the host
# gives Python is dropped by a finalizer (wray/_finalize.py) that the job's
# own code never sees in place of weakref.finalize. Actor handles keep
# their actors alive the same way: an actor ends with its last handle (run
# with --cpus 2, the loop below would wait for ever otherwise).
import gc
import time
import weakref

import wray as ray
from wray import _types


def exists(oid):
    """Whether the host still holds the object with this id."""
    try:
        _types.ObjectRef.from_id(oid)
        return True
    except Exception:
        return False


def released(oid):
    """Whether the object goes within 10 s (a task's arguments are let go
    after its result is sent)."""
    deadline = time.monotonic() + 10
    while exists(oid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@ray.remote
def length(data):
    return len(data)


@ray.remote
def first(values):
    return ray.get(values[0])


@ray.remote(num_cpus=1)
class Worker:
    def __init__(self, i):
        self.i = i

    def work(self):
        return self.i * 10


def main():
    print("weakref.finalize is the standard one:", weakref.finalize.__module__ == "weakref")

    r = ray.put(b"x" * 1000)
    oid = r._handle.id()
    print("held:", exists(oid))
    del r
    print("last ref gone:", exists(oid))

    gc.disable()  # so that only the collect below finds the cycle
    r = ray.put(b"y" * 1000)
    oid = r._handle.id()
    handle = r._handle
    handle.itself = handle  # the host handle in a cycle with itself
    del r, handle
    print("in a cycle, before collecting:", exists(oid))
    gc.collect()
    gc.enable()
    print("in a cycle, collected:", exists(oid))

    r = ray.put(b"z" * 1000)
    oid = r._handle.id()
    print("passed to tasks:", ray.get(length.remote(r)), len(ray.get(first.remote([r]))))
    del r
    print("after the tasks, last ref gone, released:", released(oid))

    ids = []
    for i in range(10000):
        ref = ray.put(i)
        if i % 1000 == 0:
            ids.append(ref._handle.id())
    print("10,000 refs made and dropped, any left:", any(exists(o) for o in ids))

    got = []
    for i in range(6):
        w = Worker.remote(i)
        got.append(ray.get(w.work.remote(), timeout=30))
    print("six 1-CPU actors in turn, each handle dropped:", got)

    w = Worker.options(name="kept").remote(7)
    work = w.work  # a method keeps no handle alive
    box = ray.put([w])
    del w
    print("kept by a stored handle:", ray.get(ray.get(box)[0].work.remote()))
    del box, work
    deadline = time.monotonic() + 30
    while "kept" in ray.util.list_named_actors() and time.monotonic() < deadline:
        time.sleep(0.01)
    print("named actors after its last handle:", ray.util.list_named_actors())
