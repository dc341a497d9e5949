# Ray Serve's Python API beyond the example (tests/all/serve.rs): a
# user_config given to reconfigure, a health check that fails, responses
# with their own status and headers, a plain generator streamed, a handle
# read with .result() in sync code, a generator streamed through a handle —
# and, by the first argument, applications that cannot start, or ("cluster")
# the handles' caller on a worker (the resource "worker").
import sys

import ray
from ray import serve


@serve.deployment(user_config={"threshold": 7}, health_check_period_s=0.1, route_prefix="/configured")
class Configured:
    def __init__(self):
        self.threshold = None
        self.sick = False

    def reconfigure(self, config):
        self.threshold = config["threshold"]

    def check_health(self):
        if self.sick:
            raise RuntimeError("asked to be sick")

    def __call__(self, request):
        if "sick" in request.query_params:
            self.sick = True
        return f"{self.threshold} {ray.get_runtime_context().get_actor_id()}"


@serve.deployment(route_prefix="/raw")
def raw(request):
    context = serve.get_replica_context()
    headers = {"X-Kind": "raw", "X-Where": f"{context.app_name}/{context.deployment}"}
    return serve.Response(b"\x00\x01", status_code=201, headers=headers, media_type="application/x-raw")


@serve.deployment(route_prefix="/letters")
def letters(request):
    # A generator without a StreamingResponse: streamed as bytes.
    for letter in request.query_params.get("word", "abc"):
        yield letter


@serve.deployment
class Adder:
    def add(self, a, b=0):
        return a + b

    def count(self, n):
        for i in range(n):
            yield i

    @serve.batch(max_batch_size=4)
    async def double_all(self, xs):
        return [2 * x for x in xs]


@serve.deployment(route_prefix="/sum")
class Summer:
    def __init__(self, adder):
        self.adder = adder

    def __call__(self, request):
        if "double" in request.query_params:
            # A batched method through a handle: a batch of one.
            return self.adder.double_all.remote(int(request.query_params["double"])).result()
        if "chain" in request.query_params:
            # A response passed on is its value in the next call.
            return self.adder.add.remote(self.adder.add.remote(2, b=3), b=10).result()
        if "n" in request.query_params:
            counts = self.adder.options(stream=True).count.remote(int(request.query_params["n"]))
            return serve.StreamingResponse(f"{i}," for i in counts)
        # Sync code reads a handle's answer with .result().
        return self.adder.add.remote(2, b=3).result()


@serve.deployment(route_prefix="/batched")
class Batched:
    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.2)
    async def __call__(self, requests):
        # Each answer names the batch's size and its own request.
        return [f"{len(requests)} {r.query_params.get('i', '')}" for r in requests]


@serve.deployment(route_prefix="/asum")
class AsyncSummer:
    def __init__(self, adder):
        self.adder = adder

    async def __call__(self, request):
        n = int(request.query_params.get("n", 3))

        async def counts():
            # `async for` over a handle's stream, in async code.
            async for i in self.adder.options(stream=True).count.remote(n):
                yield f"{i};"

        return serve.StreamingResponse(counts())


class NoCall:
    pass


mode = sys.argv[1] if len(sys.argv) > 1 else "serve"
if mode == "serve":
    adder = Adder.bind()
    serve.run(
        [Configured.bind(), raw.bind(), letters.bind(), Summer.bind(adder), AsyncSummer.bind(adder), Batched.bind()]
    )
elif mode == "cluster":
    on_worker = Summer.options(ray_actor_options={"resources": {"worker": 1}})
    serve.run([raw.bind(), on_worker.bind(Adder.bind())])
elif mode == "no-call":
    serve.run(serve.deployment(NoCall).bind())
elif mode == "no-reconfigure":
    serve.run(serve.deployment(NoCall, user_config={"a": 1}).bind())
elif mode == "bad-option":
    serve.run(serve.deployment(NoCall, num_replica=2).bind())
elif mode == "not-bound":
    serve.run(Configured)
