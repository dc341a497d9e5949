# Generator tasks and actor methods, written as for Ray: a remote function
# or method with `yield` returns an ObjectRefGenerator whose refs arrive as
# the task yields them. Run with `--cpus 2` (the checks on timing need the
# generator and the reader to run at once).
import asyncio
import time

import ray


@ray.remote
def countdown(n):
    for i in range(n, -1, -1):
        yield i


@ray.remote
def slow(n, pause):
    for i in range(n):
        if i:
            time.sleep(pause)
        yield {"i": i, "at": time.monotonic()}


@ray.remote
def fails_after(good):
    for i in range(good):
        yield i
    raise ValueError(f"no item {good}")


@ray.remote
def nested(n):
    for i in range(n):
        yield [ray.put(i * 10), ray.put(i * 10 + 1)]


@ray.remote
def plain():
    return 7


@ray.remote
async def ticks(n):
    for i in range(n):
        await asyncio.sleep(0.01)
        yield i * i


@ray.remote
class Tokens:
    def __init__(self, words):
        self.words = words
        self.served = 0

    def stream(self, upper):
        for w in self.words:
            self.served += 1
            yield w.upper() if upper else w

    async def astream(self, n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    def served_so_far(self):
        return self.served


@ray.remote
def total(n):
    # A generator read inside a task.
    return sum(ray.get(ref) for ref in countdown.remote(n))


print("countdown:", [ray.get(r) for r in countdown.remote(3)])

gen = slow.remote(3, 0.3)
first = next(gen)
print("first before the end:", not gen.is_finished())
print("the rest:", [ray.get(r)["i"] for r in gen])
print("finished:", gen.is_finished(), ray.get(gen.completed()))

seen = []
for ref in fails_after.remote(2):
    try:
        seen.append(ray.get(ref))
    except ValueError as e:
        seen.append(f"ValueError: {e.cause}")
print("fails after two:", seen)

print("nested:", [ray.get(ray.get(r)) for r in nested.remote(3)])
print("async generator task:", [ray.get(r) for r in ticks.remote(4)])

streamed = plain.options(num_returns="streaming").remote()
print("streaming of a plain function:", list(streamed), ray.get(streamed.completed()))
try:
    countdown.options(num_returns="dynamic")
except ValueError as e:
    print("dynamic:", str(e).split(":")[0])

t = Tokens.remote(["a", "b", "c"])
print("actor generator:", [ray.get(r) for r in t.stream.remote(True)])
print("async actor generator:", [ray.get(r) for r in t.astream.remote(3)])
print("served:", ray.get(t.served_so_far.remote()))
print("read in a task:", ray.get(total.remote(4)))

gen = slow.remote(100, 0.05)
next(gen)
ray.cancel(gen)
rest = list(gen)
try:
    ray.get(rest[-1])
except ray.exceptions.TaskCancelledError:
    print("cancelled: items before it, then TaskCancelledError:", 0 < len(rest) < 100)

gen = countdown.remote(2)
ready = gen.next_ready()
while not ready:
    time.sleep(0.01)
    ready = gen.next_ready()
print("next_ready, then:", [ray.get(r) for r in gen])


@ray.remote
def late(n):
    time.sleep(1)
    yield from range(n)


lazy, quick = late.remote(2), countdown.remote(1)
ready, rest = ray.wait([lazy, quick], num_returns=1, timeout=10)
print("wait on generators:", ready == [quick], rest == [lazy])
print("not yet:", ray.wait([lazy], timeout=0.1) == ([], [lazy]))
ready, rest = ray.wait([lazy, plain.remote()], num_returns=2, timeout=10)
print("with a ref:", len(ready), len(rest), [ray.get(r) for r in lazy])


async def collect():
    return [ray.get(r) async for r in countdown.remote(2)]


print("async for:", asyncio.run(collect()))



@ray.remote
def plus_one(x):
    return x + 1


# Items come in batches with their values (small ones); whatever holds them
# — a second get, an argument, a value put — sees the same object.
items = list(countdown.remote(2))
print(
    "items handed on:",
    ray.get(plus_one.remote(items[0])),
    ray.get(ray.get(ray.put(items[1:]))),
    [ray.get(r) for r in items],
    [ray.get(r) for r in items],
)



@ray.remote
def sized(n, size):
    for i in range(n):
        yield bytes([i % 256]) * size


@ray.remote
def collect_then_read(n):
    """Collects the refs of n items of 1,000 bytes before reading any:
    what the SDK keeps of the values handed out with them is bounded
    (16 MiB), so 80 MB of items fit a task limited to 64 MiB."""
    refs = list(sized.remote(n, 1000))
    return all(ray.get(r) == bytes([i % 256]) * 1000 for i, r in enumerate(refs))


print("collected unread past the task's memory:", ray.get(collect_then_read.options(memory=64 << 20).remote(80_000)))

try:
    ray.get(total.remote(countdown.remote(1)))
except TypeError as e:
    print("passed to a task:", "cannot be passed" in str(e))


@ray.remote(_generator_backpressure_num_objects=2)
def stamped(n):
    for _ in range(n):
        yield time.time()


def most_ahead(gen):
    """How many items the generator had made past the one the reader asks
    for, at most, when it asks (the reader begins late — once a generator
    without a bound has ended, or after 2 s — and takes one every 20 ms).
    Timed before the ask: once item k is taken the generator may make item
    k + 2 at once, before the reader's next line runs."""
    ray.wait([gen.completed()], timeout=2)
    asked, made = [], []
    while True:
        at = time.time()
        try:
            ref = next(gen)
        except StopIteration:
            break
        asked.append(at)
        made.append(ray.get(ref))
        time.sleep(0.02)
    return max(sum(t < at for t in made) - (k + 1) for k, at in enumerate(asked))


print(
    "backpressure:",
    most_ahead(stamped.remote(20)) <= 1,
    most_ahead(stamped.options(_generator_backpressure_num_objects=-1).remote(20)) >= 15,
)
try:
    stamped.options(_generator_backpressure_num_objects=0)
except ValueError as e:
    print("a window of 0:", "_generator_backpressure_num_objects" in str(e))


@ray.remote
class Stamper:
    def stamped(self, n):
        for _ in range(n):
            yield time.time()


stamper = Stamper.remote()
paced = stamper.stamped.options(_generator_backpressure_num_objects=2)
print("method backpressure:", most_ahead(paced.remote(20)) <= 1, most_ahead(stamper.stamped.remote(20)) >= 15)
