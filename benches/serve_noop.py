# The serve benchmark's no-op deployment as a Python job (benches/serve.sh):
# the same class as the Ray Serve reference's (benches/reference/
# serve_bench.py), two replicas, under /noop.
from ray import serve


@serve.deployment(num_replicas=2)
class Noop:
    async def __call__(self, request):
        return {"ok": True}


serve.run(Noop.bind(), name="noop", route_prefix="/noop")
