# Ray Serve's Python API beyond the example (tests/all/serve.rs): a
# user_config given to reconfigure, a health check that fails, responses
# with their own status and headers, a plain generator streamed, a handle
# read with .result() in sync code — and, by the first argument,
# applications that cannot start.
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
    return serve.Response(b"\x00\x01", status_code=201, headers={"X-Kind": "raw"}, media_type="application/x-raw")


@serve.deployment(route_prefix="/letters")
def letters(request):
    # A generator without a StreamingResponse: streamed as bytes.
    for letter in request.query_params.get("word", "abc"):
        yield letter


@serve.deployment
class Adder:
    def add(self, a, b=0):
        return a + b


@serve.deployment(route_prefix="/sum")
class Summer:
    def __init__(self, adder):
        self.adder = adder

    def __call__(self, request):
        # Sync code reads a handle's answer with .result().
        return self.adder.add.remote(2, b=3).result()


class NoCall:
    pass


mode = sys.argv[1] if len(sys.argv) > 1 else "serve"
if mode == "serve":
    serve.run([Configured.bind(), raw.bind(), letters.bind(), Summer.bind(Adder.bind())])
elif mode == "no-call":
    serve.run(serve.deployment(NoCall).bind())
elif mode == "no-reconfigure":
    serve.run(serve.deployment(NoCall, user_config={"a": 1}).bind())
elif mode == "bad-option":
    serve.run(serve.deployment(NoCall, num_replica=2).bind())
elif mode == "not-bound":
    serve.run(Configured)
