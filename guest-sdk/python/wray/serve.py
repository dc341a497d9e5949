"""Ray Serve's Python API over wray's ``serve`` interface: deployments of
classes (or functions) whose replicas are actors, answering HTTP requests
that the host's proxy routes to them, and calling each other through
handles.

``wray serve run app.wasm`` (or ``wray serve deploy`` to a head) runs the
script; its ``serve.run(app)`` serves the application until the server
shuts down. The proxy hands each request to a replica's ``__call__`` as a
``Request`` (Starlette's names: ``query_params``, ``headers``, ``url.path``,
``await request.json()``); what it returns is the response, as in Ray
Serve: a ``str`` (``text/plain``), ``bytes``, a ``Response`` (or
``JSONResponse``, ``PlainTextResponse``, ``StreamingResponse``), anything
else as JSON. A generator (sync or async) — or a ``StreamingResponse`` of
one — is streamed: each item goes to the client as it is yielded.

The request and the response cross the host in the layout the proxy and
the Rust SDK share (``wray_codec::http``, postcard): read and written here
by hand, since Python has no postcard.
"""

import json as _json
import types as _pytypes
import urllib.parse as _urlparse

from wit_world.imports import serve as _serve
from wit_world.imports import tasks as _tasks
from wit_world.imports import types as _types

from . import _codec

# The method the proxy calls on a Python replica: `_entry.actor_call`
# hands it to `_http_call` below. A deployment without a route is declared
# with `UNROUTED_METHOD` instead: reached only through handles, its class
# need not have `__call__` (its replicas are asked for the declared
# method before they take calls).
HTTP_METHOD = "__wray_http__"
UNROUTED_METHOD = "__wray_unrouted__"
# The method a batched `__call__` (`@serve.batch`) is declared with: the
# proxy gathers requests and calls it with the list.
HTTP_BATCH_METHOD = "__wray_http_batch__"

# The first byte of a `Chunk` (postcard: the variant's index).
_CHUNK_HEAD = b"\x00"
_CHUNK_BODY = b"\x01"

# `@serve.batch`'s bounds, as Ray Serve's (and the host's).
_MAX_BATCH_SIZE = 4096

# Ray Serve's defaults (`max_ongoing_requests`, `max_queued_requests`: -1,
# no bound, is wray's largest, as the Rust SDK has it).
_DEFAULT_MAX_ONGOING = 5
_MAX_QUEUED_UNBOUNDED = 1_000_000

# What a replica's `reconfigure` receives starts with this (then the
# pickled config): no other call's first argument does — a Python
# caller's starts with a pickle's 0x80, another language's with the
# cross-language magic — so `_entry.actor_call` tells it apart.
USER_CONFIG_MAGIC = b"\x00wray-user-config\x00"

_DEPLOYMENT_OPTIONS = {
    "name",
    "user_config",
    "num_replicas",
    "route_prefix",
    "max_ongoing_requests",
    "max_queued_requests",
    "autoscaling_config",
    "ray_actor_options",
    "health_check_period_s",
    "request_timeout_s",
}


class Request:
    """An HTTP request as a replica sees it — the parts of Starlette's
    ``Request`` that Ray Serve code uses."""

    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.url = _URL(path, query)
        self.query_params = dict(_urlparse.parse_qsl(query, keep_blank_values=True))
        self.headers = dict(headers)
        self.path_params = {}
        self._body = body

    async def body(self):
        """The whole body, as bytes."""
        return self._body

    async def json(self):
        """The body parsed as JSON."""
        return _json.loads(self._body)

    def __repr__(self):
        return f"<Request {self.method} {self.url}>"


class _URL:
    def __init__(self, path, query):
        self.path = path
        self.query = query

    def __str__(self):
        return self.path + ("?" + self.query if self.query else "")


class Response:
    """A whole response: ``content`` (bytes, or str encoded as UTF-8), a
    status and headers, as Starlette's ``Response``."""

    media_type = None

    def __init__(self, content=b"", status_code=200, headers=None, media_type=None):
        self.status_code = int(status_code)
        self.headers = dict(headers or {})
        media_type = media_type or self.media_type
        if media_type and not any(k.lower() == "content-type" for k in self.headers):
            self.headers["content-type"] = media_type
        self.body = self.render(content)

    def render(self, content):
        if content is None:
            return b""
        if isinstance(content, (bytes, bytearray, memoryview)):
            return bytes(content)
        return str(content).encode()


class PlainTextResponse(Response):
    media_type = "text/plain; charset=utf-8"


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content):
        return _json.dumps(content, separators=(",", ":")).encode()


class StreamingResponse:
    """A streamed response: each item of ``content`` (a generator, sync or
    async, of str or bytes) is sent to the client as it is made."""

    def __init__(self, content, status_code=200, headers=None, media_type=None):
        self.content = content
        self.status_code = int(status_code)
        self.headers = dict(headers or {})
        if media_type and not any(k.lower() == "content-type" for k in self.headers):
            self.headers["content-type"] = media_type


# --- declaring an application -------------------------------------------


class Deployment:
    """A class (or function) made a deployment by ``@serve.deployment``:
    ``.bind(*args)`` gives an application to ``serve.run``, ``.options()`` a
    copy with other options."""

    def __init__(self, target, options):
        unknown = set(options) - _DEPLOYMENT_OPTIONS
        if unknown:
            raise TypeError(f"unknown deployment option(s) {sorted(unknown)}; wray takes {sorted(_DEPLOYMENT_OPTIONS)}")
        self._target = target
        self._options = options
        self.name = options.get("name") or target.__name__

    def options(self, **options):
        return Deployment(self._target, {**self._options, **options})

    def bind(self, *args, **kwargs):
        return Application(self, args, kwargs)

    def __call__(self, *args, **kwargs):
        raise TypeError(f"deployment {self.name!r} is not called directly: bind it and pass it to serve.run")


class Application:
    """A deployment bound to its constructor's arguments; other bound
    deployments among them become ``DeploymentHandle``s in the replica."""

    def __init__(self, deployment, args, kwargs):
        self._deployment = deployment
        self._args = args
        self._kwargs = kwargs


def deployment(_target=None, **options):
    """``@serve.deployment`` or ``@serve.deployment(num_replicas=2, ...)``
    on a class (its ``__call__`` answers requests) or a function of the
    request."""
    if _target is not None:
        return Deployment(_target, options)
    return lambda target: Deployment(target, options)


def batch(_func=None, *, max_batch_size=10, batch_wait_timeout_s=0.01):
    """``@serve.batch`` on a deployment's ``__call__``: it takes a list of
    requests and returns one answer for each, in order, and the proxy
    gathers up to ``max_batch_size`` requests, waiting at most
    ``batch_wait_timeout_s`` for more once one is there. A handle's call
    of it with one argument is a batch of one."""
    if not isinstance(max_batch_size, int) or isinstance(max_batch_size, bool) or not 1 <= max_batch_size <= _MAX_BATCH_SIZE:
        raise ValueError(f"max_batch_size must be an integer from 1 to {_MAX_BATCH_SIZE}, not {max_batch_size!r}")
    if not isinstance(batch_wait_timeout_s, (int, float)) or batch_wait_timeout_s < 0:
        raise ValueError(f"batch_wait_timeout_s must be a number of seconds of at least 0, not {batch_wait_timeout_s!r}")

    def mark(fn):
        fn._wray_batch = (max_batch_size, int(batch_wait_timeout_s * 1000))
        return fn

    return mark(_func) if _func is not None else mark


def _batching(cls):
    """The batch bounds of a class whose ``__call__`` is ``@serve.batch``."""
    return getattr(getattr(cls, "__call__", None), "_wray_batch", None) if isinstance(cls, type) else None


class ReplicaContext:
    """What ``serve.get_replica_context()`` tells a replica about itself."""

    def __init__(self, app_name, deployment, replica_id):
        self.app_name = app_name
        self.deployment = deployment
        # The replica's actor id; Ray's older name for it as well.
        self.replica_id = replica_id
        self.replica_tag = replica_id

    def __repr__(self):
        return f"ReplicaContext(app_name={self.app_name!r}, deployment={self.deployment!r}, replica_id={self.replica_id!r})"


# This instance's, once it is a replica (`_make_replica`).
_replica_context = None


def get_replica_context():
    """The application, deployment and replica whose code calls it."""
    if _replica_context is None:
        raise RuntimeError("serve.get_replica_context() is called from a deployment's code, in one of its replicas")
    return _replica_context


def _make_replica(cls, app_name, deployment, *args, **kwargs):
    """A replica's constructor: notes who it is, then builds ``cls``."""
    global _replica_context
    from . import get_runtime_context
    from ._entry import _renamed

    _replica_context = ReplicaContext(app_name, deployment, get_runtime_context().get_actor_id())
    replica = _renamed(cls)(*args, **kwargs)
    # A handle calls a `@serve.batch` method with one argument: the
    # instance gets a batch-of-one wrapper under the method's name, once
    # here rather than a check in every actor call. (The proxy's batches
    # still reach a batched `__call__` itself: `replica(requests)` looks
    # special methods up on the class.)
    for name in dir(cls):
        if getattr(getattr(cls, name, None), "_wray_batch", None) is not None:
            try:
                setattr(replica, name, _one_of_batch(getattr(replica, name)))
            except AttributeError:
                raise TypeError(
                    f"{cls.__name__}.{name} is a @serve.batch method, which needs the instance to take attributes "
                    "(a class with __slots__ cannot)"
                ) from None
    return replica


def _one_of_batch(method):
    """A ``@serve.batch`` method called through a handle with one
    argument: a batch of one."""
    from ._entry import _settle

    def one(*args, **kwargs):
        if len(args) != 1 or kwargs:
            raise TypeError(f"{method.__name__} is a @serve.batch method: a handle calls it with one argument")
        return _settle(method([args[0]]))[0]

    return one


class _FunctionDeployment:
    """The replica of a function deployment: calls the function."""

    def __init__(self, fn):
        from ._entry import _renamed

        # Shipped by value, as a remote function is: its traceback names
        # the script again.
        self._fn = _renamed(fn)

    def __call__(self, *args, **kwargs):
        return self._fn(*args, **kwargs)


def _ms(seconds, what):
    if seconds is None:
        return None
    if not isinstance(seconds, (int, float)) or seconds <= 0:
        raise ValueError(f"{what} must be a positive number of seconds, not {seconds!r}")
    return int(seconds * 1000)


def _count(options, key, default, low=1):
    value = options.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{key} must be an integer of at least {low}, not {value!r}")
    return value


def _autoscaling(config):
    if config is None:
        return None
    if not isinstance(config, dict):
        raise TypeError(f"autoscaling_config must be a dict, not {type(config).__name__}")
    low = config.get("min_replicas", 1)
    high = config.get("max_replicas", max(low, 1))
    return _serve.Autoscaling(
        min_replicas=int(low),
        max_replicas=int(high),
        initial_replicas=config.get("initial_replicas"),
        target_ongoing_requests=float(config.get("target_ongoing_requests", 2.0)),
        upscale_delay_ms=int(float(config.get("upscale_delay_s", 30.0)) * 1000),
        downscale_delay_ms=int(float(config.get("downscale_delay_s", 600.0)) * 1000),
    )


def _user_config(options):
    if options.get("user_config") is None:
        return None
    import pickle

    return USER_CONFIG_MAGIC + pickle.dumps(options["user_config"], protocol=5)


def _wit_deployments(app_name, apps, route_prefixes):
    """The WIT deployments of ``apps`` (each under its route prefix) and of
    the applications bound among their arguments (each once, by name), the
    ingresses first."""
    from . import _wit_options

    out = {}

    def visit(a, prefix):
        d = a._deployment
        if d.name in out:
            if out[d.name][0] is not a:
                raise ValueError(f"two deployments are named {d.name!r}: give one another name with .options(name=...)")
            return
        out[d.name] = (a, None)

        def handle(v):
            if isinstance(v, Application):
                visit(v, None)
                return DeploymentHandle(v._deployment.name)
            return v

        args = [handle(v) for v in a._args]
        kwargs = {k: handle(v) for k, v in a._kwargs.items()}
        o = d._options
        target = d._target
        if isinstance(target, type):
            cls, ctor = target, []
        elif args or kwargs:
            raise TypeError(f"function deployment {d.name!r} takes no arguments in bind(); its requests are its input")
        else:
            cls, ctor = _FunctionDeployment, [target]
        init = [_codec.to_value(_make_replica)]
        values = [cls, app_name, d.name] + ctor + args + list(kwargs.values())
        init.append(_codec.to_value(list(kwargs)) if kwargs else _types.Value(data=_codec.NO_KEYWORDS, refs=[]))
        init.extend(_codec.to_value(v) for v in values)
        own_prefix = o.get("route_prefix", prefix)
        batched = _batching(target)
        if own_prefix is None:
            method = UNROUTED_METHOD
        else:
            method = HTTP_BATCH_METHOD if batched else HTTP_METHOD
        out[d.name] = (
            a,
            _serve.Deployment(
                name=d.name,
                class_=getattr(target, "__qualname__", d.name),
                init_args=init,
                method=method,
                route_prefix=own_prefix,
                num_replicas=_count(o, "num_replicas", 1),
                autoscaling=_autoscaling(o.get("autoscaling_config")),
                max_ongoing_requests=_count(o, "max_ongoing_requests", _DEFAULT_MAX_ONGOING),
                max_queued_requests=(
                    _MAX_QUEUED_UNBOUNDED if o.get("max_queued_requests", -1) == -1 else _count(o, "max_queued_requests", 0, low=0)
                ),
                batching=batched and _serve.Batching(max_batch_size=batched[0], batch_wait_timeout_ms=batched[1]),
                request_timeout_ms=_ms(o.get("request_timeout_s"), "request_timeout_s"),
                user_config=_user_config(o),
                health_check_period_ms=_ms(o.get("health_check_period_s"), "health_check_period_s"),
                idempotent=False,
                # Ray Serve spreads a deployment's replicas over the nodes.
                options=_wit_options({"scheduling_strategy": "SPREAD", **(o.get("ray_actor_options") or {})}),
            ),
        )

    for app, prefix in zip(apps, route_prefixes):
        visit(app, prefix)
    return [d for _, d in out.values()]


def run(target, *, name="default", route_prefix="/", blocking=True, logging_config=None, _local_testing_mode=False):
    """Serves the application ``target`` (a bound deployment) under
    ``name`` until the server shuts down (Ctrl-C, ``wray serve
    shutdown``), then returns — as ``serve run`` does, not Ray's
    non-blocking ``serve.run``. Its ingress answers under
    ``route_prefix`` (None: only through handles); a deployment declared
    with ``route_prefix=`` answers under its own, and one bound into
    another is reached through the handle it becomes there.

    ``target`` may also be a list of bound deployments, served together
    (one ``serve.run`` serves a job): each answers under its own
    ``route_prefix`` option, or ``/`` and its name (Ray 1's default,
    ``/model`` for a deployment ``model``)."""
    from . import _call

    apps = list(target) if isinstance(target, (list, tuple)) else [target]
    for a in apps:
        if not isinstance(a, Application):
            raise TypeError(f"serve.run takes a bound deployment (Model.bind(...)), not {type(a).__name__}")
    if not blocking:
        raise ValueError("serve.run(blocking=False) is not supported: the job serves until the server shuts down")
    # Ray's logging_config (the replicas' output goes to the job's log as
    # any actor's does) and local testing mode change nothing here.
    del logging_config, _local_testing_mode
    if isinstance(target, (list, tuple)):
        prefixes = [a._deployment._options.get("route_prefix") or "/" + a._deployment.name for a in apps]
    else:
        prefixes = [target._deployment._options.get("route_prefix", route_prefix)]
    _call(_serve.run, name, _wit_deployments(name, apps, prefixes))


# --- calling a deployment from another -----------------------------------


class DeploymentHandle:
    """Calls another deployment of the same application (Ray's
    ``DeploymentHandle``): ``handle.method.remote(*args)`` (or
    ``handle.remote(*args)`` for ``__call__``) goes to its least loaded
    replica and gives a ``DeploymentResponse``; through
    ``handle.options(stream=True)``, a generator method's call gives a
    ``DeploymentResponseGenerator`` of its items as they are made."""

    def __init__(self, deployment_name, method="__call__", stream=False):
        self.deployment_name = deployment_name
        self._method = method
        self._stream = stream

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        return DeploymentHandle(self.deployment_name, method, self._stream)

    def options(self, *, method_name=None, stream=None, **_ignored):
        return DeploymentHandle(
            self.deployment_name, method_name or self._method, self._stream if stream is None else bool(stream)
        )

    def remote(self, *args, **kwargs):
        from . import ObjectRef, ObjectRefGenerator, _args, _call

        # A DeploymentResponse passed on is its value in the call, as in
        # Ray: its ref, which the host resolves first.
        args = [a._ref if isinstance(a, DeploymentResponse) else a for a in args]
        kwargs = {k: v._ref if isinstance(v, DeploymentResponse) else v for k, v in kwargs.items()}
        ref = ObjectRef(_call(_serve.call, self.deployment_name, self._method, _args(args, kwargs)))
        if self._stream:
            return DeploymentResponseGenerator(ObjectRefGenerator(ref))
        return DeploymentResponse(ref)

    def __reduce__(self):
        return (DeploymentHandle, (self.deployment_name, self._method, self._stream))

    def __repr__(self):
        return f"DeploymentHandle({self.deployment_name!r})"


class DeploymentResponse:
    """The answer of a handle's call: ``.result()`` waits for it, ``await``
    too (in an ``async def``)."""

    def __init__(self, ref):
        self._ref = ref

    def result(self, timeout_s=None):
        from . import get

        return get(self._ref, timeout=timeout_s)

    def __await__(self):
        return self._ref.__await__()

    def _to_object_ref(self):
        return self._ref


class DeploymentResponseGenerator:
    """The items of a generator method called through
    ``handle.options(stream=True)``, each value as it is made: iterate it
    (``for``, or ``async for`` in an ``async def``)."""

    def __init__(self, refs):
        self._refs = refs

    def __iter__(self):
        return self

    def __next__(self):
        from . import get

        return get(next(self._refs))

    def __aiter__(self):
        return self

    async def __anext__(self):
        return await (await self._refs.__anext__())


# --- answering a request in a replica -------------------------------------


def _check_methods(actor, names):
    """The host asks, before a replica takes requests, whether the methods
    it will call exist (each name a postcard string)."""
    missing = []
    for raw in names:
        name = _Reader(bytes(raw)).str()
        if name == UNROUTED_METHOD:
            continue
        if name in (HTTP_METHOD, HTTP_BATCH_METHOD):
            if not callable(actor):
                missing.append("__call__ (it has a route and answers HTTP requests)")
        elif not callable(getattr(actor, name, None)):
            why = "it has a user_config" if name == "reconfigure" else "it has a health_check_period_s"
            missing.append(f"{name} ({why})")
    if missing:
        raise TypeError(f"{type(actor).__name__} lacks methods its deployment calls: {', '.join(missing)}")


def _reconfigure(actor, config):
    """``reconfigure`` with the deployment's ``user_config``."""
    import pickle

    config = bytes(config)
    if not config.startswith(USER_CONFIG_MAGIC):
        raise ValueError("reconfigure was given something other than a user_config")
    return actor.reconfigure(pickle.loads(config[len(USER_CONFIG_MAGIC) :]))


def _http_call(actor, args):
    """``__wray_http__``: decodes the proxy's request, calls the replica's
    ``__call__`` and encodes what it returns (a generator's chunks are
    yielded as they come; the call's value is then empty)."""
    from ._entry import _settle

    if len(args) != 1:
        raise TypeError(f"an HTTP call takes one request, not {len(args)} arguments")
    request = _decode_request(bytes(args[0]))
    result = actor(request)
    if isinstance(result, _pytypes.CoroutineType):
        # An `async def __call__`: what it returns is the answer, a
        # StreamingResponse or a generator included.
        result = _settle(result)
    if isinstance(result, StreamingResponse):
        head = _encode_response(result.status_code, result.headers, b"")
        _tasks.yield_item(_types.Value(data=_CHUNK_HEAD + head, refs=[]))
        result = result.content
    if isinstance(result, (_pytypes.GeneratorType, _pytypes.AsyncGeneratorType)):
        _stream(result, _settle)
        return _types.Value(data=b"", refs=[])
    return _types.Value(data=_encode_whole(_settle(result)), refs=[])


def _http_batch_call(actor, args):
    """``__wray_http_batch__``: the proxy's batch of requests to a
    ``@serve.batch`` ``__call__``, one answer for each, in order."""
    from ._entry import _settle

    if len(args) != 1:
        raise TypeError(f"an HTTP batch call takes one list of requests, not {len(args)} arguments")
    r = _Reader(bytes(args[0]))
    requests = [_decode_request_from(r) for _ in range(r.varint())]
    answers = _settle(actor(requests))
    if not isinstance(answers, (list, tuple)) or len(answers) != len(requests):
        got = f"{len(answers)} answers" if isinstance(answers, (list, tuple)) else f"a {type(answers).__name__}"
        raise TypeError(f"a @serve.batch __call__ returns one answer per request: {len(requests)} requests, {got}")
    body = b"".join(_encode_whole(a) for a in answers)
    return _types.Value(data=_varint(len(answers)) + body, refs=[])


def _stream(gen, settle):
    def send(item):
        if isinstance(item, str):
            item = item.encode()
        elif not isinstance(item, (bytes, bytearray, memoryview)):
            item = _json.dumps(item, separators=(",", ":")).encode()
        _tasks.yield_item(_types.Value(data=_CHUNK_BODY + _varint(len(item)) + bytes(item), refs=[]))

    if isinstance(gen, _pytypes.GeneratorType):
        for item in gen:
            send(item)
        return

    async def drain():
        async for item in gen:
            send(item)

    settle(drain())


def _encode_whole(value):
    if isinstance(value, Response):
        return _encode_response(value.status_code, value.headers, value.body)
    if isinstance(value, str):
        return _encode_response(200, {"content-type": "text/plain; charset=utf-8"}, value.encode())
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _encode_response(200, {"content-type": "application/octet-stream"}, bytes(value))
    body = _json.dumps(value, separators=(",", ":")).encode()
    return _encode_response(200, {"content-type": "application/json"}, body)


# postcard: unsigned integers as LEB128 varints, strings and byte strings
# as a varint length then the bytes, sequences as a varint count then the
# items, an enum as its variant's index then its fields.


def _varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _string(b):
    return _varint(len(b)) + b


def _encode_response(status, headers, body):
    if not isinstance(status, int) or not 100 <= status <= 999:
        raise ValueError(f"an HTTP status is 100 to 999, not {status!r}")
    parts = [_varint(status), _varint(len(headers))]
    for k, v in headers.items():
        parts.append(_string(str(k).lower().encode()))
        parts.append(_string(str(v).encode()))
    parts.append(_string(body))
    return b"".join(parts)


class _Reader:
    def __init__(self, data):
        self.data = data
        self.at = 0

    def varint(self):
        n, shift = 0, 0
        while True:
            if self.at >= len(self.data) or shift > 63:
                raise ValueError("a request cut short")
            byte = self.data[self.at]
            self.at += 1
            n |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return n
            shift += 7

    def bytes(self):
        n = self.varint()
        if self.at + n > len(self.data):
            raise ValueError("a request cut short")
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def str(self):
        return self.bytes().decode()


def _decode_request(data):
    return _decode_request_from(_Reader(data))


def _decode_request_from(r):
    method, path, query = r.str(), r.str(), r.str()
    headers = [(r.str(), r.str()) for _ in range(r.varint())]
    body = r.bytes()
    return Request(method, path, query, headers, body)

