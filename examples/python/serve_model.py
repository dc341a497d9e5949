# The seeds' Ray Serve example in Python (docs/PYTHON.md, "Serve"): a model
# behind HTTP that answers ?query=, with a greeting, a streamed countdown, two
# deployments composed through a handle and a generator streamed through one
# beside it.
#
#   wray build examples/python/serve_model.py -o serve_model.wasm
#   wray serve run serve_model.wasm
#   curl 'http://127.0.0.1:8000/model?query=What%27s%20the%20meaning%20of%20life%3F'
#   curl 'http://127.0.0.1:8000/hello?name=wray'        {"message":"Hello, wray!"}
#   curl -N 'http://127.0.0.1:8000/countdown?from=3'    data: 3, 2, 1, 0 as they come
#   curl 'http://127.0.0.1:8000/double?x=21'            42
#   curl -N 'http://127.0.0.1:8000/tokens?n=3'          data: token-0, token-1, token-2
#
# The seeds load GPT-2 with transformers' pipeline; a component carries no
# such package (nor its weights), so `language_model` below stands in for
# it with the pipeline's answer shape: a list of {"generated_text": ...}.
import time

from ray import serve
from ray.serve import StreamingResponse


def language_model(query, max_length=100):
    """A stand-in for pipeline("text-generation", model="gpt2")."""
    text = query + " Forty-two, said the computer, after seven and a half million years."
    return [{"generated_text": text[:max_length]}]


@serve.deployment
def model(request):
    # Read the query from the request.
    query = request.query_params["query"]
    # Generate text from it with the model.
    return language_model(query, max_length=100)


@serve.deployment(num_replicas=2, route_prefix="/hello")
class Greeter:
    def __init__(self, greeting):
        self.greeting = greeting

    async def __call__(self, request):
        if request.method == "POST":
            name = (await request.json())["name"]
        else:
            name = request.query_params.get("name", "world")
        return {"message": f"{self.greeting}, {name}!"}


@serve.deployment(route_prefix="/countdown")
class Countdown:
    def __call__(self, request):
        start = int(request.query_params.get("from", 3))
        pause = float(request.query_params.get("pause_ms", 100)) / 1000

        def events():
            for i in range(start, -1, -1):
                yield f"data: {i}\n\n"
                if i:
                    time.sleep(pause)

        return StreamingResponse(events(), media_type="text/event-stream")


@serve.deployment
class Doubler:
    def double(self, x):
        return 2 * x


@serve.deployment(route_prefix="/double")
class Ingress:
    def __init__(self, doubler):
        # A bound deployment passed to the constructor arrives as a handle.
        self.doubler = doubler

    async def __call__(self, request):
        x = int(request.query_params["x"])
        return await self.doubler.double.remote(x)


@serve.deployment
class Tokens:
    def generate(self, prompt, n):
        # A generator method: through a streaming handle, each token reaches
        # the caller as it is made.
        for i in range(n):
            yield f"{prompt}-{i}"


@serve.deployment(route_prefix="/tokens")
class Streamer:
    def __init__(self, tokens):
        self.tokens = tokens

    def __call__(self, request):
        n = int(request.query_params.get("n", 3))
        tokens = self.tokens.options(stream=True).generate.remote("token", n)
        return StreamingResponse((f"data: {t}\n\n" for t in tokens), media_type="text/event-stream")


serve.run(
    [
        model.bind(),
        Greeter.bind("Hello"),
        Countdown.bind(),
        Ingress.bind(Doubler.bind()),
        Streamer.bind(Tokens.bind()),
    ]
)
