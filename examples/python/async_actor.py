# `async def` in a Python job: an actor whose methods are coroutines, an async remote
# function, `await` on object refs, and `asyncio.run` in the driver — on the event loop
# wray gives a component (asyncio's own needs sockets and threads, which a component has
# not). Each call runs to completion before the instance takes the next.
#
#   wray build examples/python/async_actor.py
#   wray run examples/python/async_actor.wasm
import asyncio

import wray as ray


@ray.remote
class Downloader:
    def __init__(self):
        self.fetched = 0

    async def fetch(self, url):
        await asyncio.sleep(0.01)  # stands for the wait on a slow service
        self.fetched += 1
        return f"{url}: {len(url)} bytes"

    async def fetch_all(self, urls):
        # Coroutines of one call overlap their waits.
        return await asyncio.gather(*[self.fetch(u) for u in urls])

    def count(self):
        return self.fetched

    async def wait_forever(self):
        await asyncio.Event().wait()


@ray.remote
async def double(x):
    await asyncio.sleep(0.005)
    return 2 * x


@ray.remote
async def total(refs):
    # `await` on refs inside a value: each is a `get`.
    return sum(await asyncio.gather(*refs))


async def main():
    d = Downloader.remote()
    print("fetch:", await d.fetch.remote("a.example"))
    print("fetch_all:", ray.get(d.fetch_all.remote(["b.example", "cc.example"])))
    print("fetched:", ray.get(d.count.remote()))
    print("async tasks:", ray.get([double.remote(i) for i in range(4)]))
    print("awaiting refs:", ray.get(total.remote([double.remote(i) for i in range(4)])))
    try:
        ray.get(d.wait_forever.remote())
    except ray.exceptions.RayTaskError as e:
        print("waits for another call:", "one call of an instance at a time" in str(e))


if __name__ == "__main__":
    asyncio.run(main())
