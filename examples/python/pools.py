# Ray's helpers from Python: `ray.util.ActorPool` spreading calls over a set of actors,
# `ray.util.multiprocessing.Pool`, Python's multiprocessing API on worker actors (with an
# initializer whose globals the mapped function sees, as in a pool process), and
# `ray.util.queue.Queue` between a producer task and a consumer task.
#
#   wray build examples/python/pools.py
#   wray run examples/python/pools.wasm
import wray as ray
from wray.util import ActorPool
from wray.util.multiprocessing import Pool
from wray.util.queue import Empty, Queue


@ray.remote
class Scorer:
    def __init__(self, weight):
        self.weight = weight

    def score(self, x):
        return self.weight * x


def cube(x):
    return x**3


def add(a, b):
    return a + b


def check(x):
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x


TABLE = None


def load_table(size):
    # Runs once in each pool process; what it leaves, the mapped function finds.
    global TABLE
    TABLE = [i * i for i in range(size)]


def lookup(i):
    return TABLE[i]


@ray.remote
def produce(q, n):
    for i in range(n):
        q.put(i)
    q.put(None)  # the end
    return n


@ray.remote
def consume(q):
    total = 0
    while (item := q.get(timeout=30)) is not None:
        total += item
    return total


if __name__ == "__main__":
    pool = ActorPool([Scorer.remote(10), Scorer.remote(10)])
    print("ActorPool.map:", list(pool.map(lambda a, v: a.score.remote(v), range(6))))
    print("ActorPool.map_unordered:", sorted(pool.map_unordered(lambda a, v: a.score.remote(v), range(4))))
    for v in (7, 8, 9):
        pool.submit(lambda a, v: a.score.remote(v), v)
    print("submit, get_next:", [pool.get_next() for _ in range(3)], pool.has_next())
    idle = pool.pop_idle()
    pool.push(idle)
    try:
        pool.push(idle)
    except ValueError as e:
        print("pushed twice:", e)

    with Pool(2) as p:
        print("map:", p.map(cube, range(8)))
        print("starmap:", p.starmap(add, [(1, 2), (3, 4)]))
        print("imap:", list(p.imap(cube, range(4))))
        print("imap_unordered:", sorted(p.imap_unordered(cube, range(4), chunksize=2)))
        r = p.apply_async(add, (20, 22))
        print("apply_async:", r.get(timeout=60), r.successful())
        print("apply with keywords:", p.apply(add, (1,), {"b": 5}))
        try:
            p.map(check, range(5))
        except ValueError as e:
            print("an item's exception:", str(e).splitlines()[-1])
    with Pool(2, initializer=load_table, initargs=(10,)) as p:
        print("initializer:", p.map(lookup, [1, 3, 9]))

    q = Queue(maxsize=4)  # the producer waits for room, the consumer for items
    consumer = consume.options(num_cpus=0.5).remote(q)
    produced = produce.options(num_cpus=0.5).remote(q, 100)
    print("queue between tasks:", ray.get(produced), ray.get(consumer))
    q.put_nowait_batch([1, 2])
    print("queue batch:", q.get_nowait_batch(2), q.empty())
    try:
        q.get(timeout=0.05)
    except Empty:
        print("empty queue: Empty")
