"""wray for Python: Ray's Core API, every task and actor in its own sandbox.

Write a job as you would for Ray and import this package in its place::

    import wray as ray

    @ray.remote
    def square(x):
        return x * x

    print(ray.get([square.remote(i) for i in range(4)]))

then build and run it::

    wray build job.py          # prints the component's path
    wray run job.wasm -- args  # sys.argv[1:] is ["args"]

The script runs as ``__main__`` in the job's driver (a module with a
``main()`` and no ``if __name__ == "__main__":`` block gets ``main()``
called). Each task and each actor runs in a fresh WebAssembly instance of the
same component: functions and classes travel to it pickled by value (as Ray
ships them), together with the globals they use. Values are pickled; an
``ObjectRef`` passed as a top-level argument is resolved to its value before
the task runs, one nested inside a value stays a ref — as in Ray.

What differs from Ray, and why, is in ``docs/PYTHON.md``.
"""

import collections as _collections
import functools as _functools
import sys as _sys
import time as _time

from componentize_py_types import Err as _Err
from wit_world.imports import actors as _actors
from wit_world.imports import cluster as _cluster
from wit_world.imports import tasks as _tasks
from wit_world.imports import types as _types

from . import exceptions
from . import _codec
from ._version import __version__  # noqa: F401 (written by `wray build`: the wray that built the job)

__all__ = [
    "ObjectRef",
    "actor",
    "ActorHandle",
    "available_resources",
    "cancel",
    "cluster_resources",
    "exceptions",
    "get",
    "get_actor",
    "get_runtime_context",
    "init",
    "is_initialized",
    "kill",
    "method",
    "nodes",
    "put",
    "remote",
    "shutdown",
    "wait",
]

# Ray's "infinite" for max_restarts / max_task_retries / max_retries.
_FOREVER = 2**32 - 1


def _raise(err):
    """Raises the exception for a WIT ``error``."""
    e = err.value if isinstance(err, _Err) else err
    if isinstance(e, _types.Error_TaskFailed):
        raise exceptions.task_error(e.value.function, e.value.message) from None
    if isinstance(e, _types.Error_ActorDied):
        raise exceptions.RayActorError(e.value) from None
    if isinstance(e, _types.Error_ObjectLost):
        raise exceptions.ObjectLostError(e.value) from None
    if isinstance(e, _types.Error_Timeout):
        raise exceptions.GetTimeoutError("get timed out") from None
    if isinstance(e, _types.Error_Cancelled):
        raise exceptions.TaskCancelledError("the task was cancelled") from None
    if isinstance(e, _types.Error_StoreFull):
        raise exceptions.ObjectStoreFullError(e.value) from None
    if isinstance(e, _types.Error_InvalidArgument):
        raise exceptions.InvalidArgumentError(e.value) from None
    raise exceptions.RayError(repr(e)) from None


def _call(f, *args):
    """Calls a host function, turning its error into wray's exception."""
    try:
        return f(*args)
    except _Err as err:
        _raise(err)


class ObjectRef:
    """A reference to an object that exists or will exist (Ray's
    ``ObjectRef``). Pass it to ``wray.get``/``wait``, to tasks, or inside
    other values; the object lives while any reference to it does."""

    __slots__ = ("_handle", "_value", "__weakref__")

    def __init__(self, handle):
        self._handle = handle
        self._value = None

    def hex(self):
        """The object's id in hex."""
        oid = self._handle.id()
        return f"{oid.task_hi:016x}{oid.task_lo:016x}{oid.index:08x}"

    def __repr__(self):
        return f"ObjectRef({self.hex()})"

    def __eq__(self, other):
        return isinstance(other, ObjectRef) and self.hex() == other.hex()

    def __hash__(self):
        return hash(self.hex())

    def __await__(self):
        # `await ref` in an async method or remote function: the value, as
        # `get` gives it (calls into an instance run one at a time).
        return get(self)
        yield  # makes this a generator, as __await__ must return an iterator

    def __reduce__(self):
        # Only wray's own pickler may write a ref (as an id the host keeps
        # alive); any other pickle of one would dangle.
        raise TypeError("an ObjectRef can only be pickled by wray (pass it to a task, put or return it)")


# Bytes of values handed out with generator items that the job may keep
# unread at once (`_ItemRef`); past it a value is not kept, and its `get`
# asks the host, which holds every value anyway.
_MAX_KEPT_VALUE_BYTES = 16 << 20
_kept_value_bytes = 0


class _ItemRef(ObjectRef):
    """A generator's small item, handed out with its encoded value, which
    its first ``get`` takes instead of asking the host."""

    __slots__ = ()

    def __init__(self, handle, value):
        global _kept_value_bytes
        self._handle = handle
        self._value = None
        if value is not None and _kept_value_bytes + len(value) <= _MAX_KEPT_VALUE_BYTES:
            _kept_value_bytes += len(value)
            self._value = value

    def _take_value(self):
        global _kept_value_bytes
        value, self._value = self._value, None
        if value is not None:
            _kept_value_bytes -= len(value)
        return value

    def __del__(self):
        self._take_value()


# Options: Ray's names, checked and mapped onto the WIT `options` record.

_TASK_OPTIONS = {
    "num_cpus",
    "num_gpus",
    "resources",
    "memory",
    "max_retries",
    "retry_exceptions",
    "num_returns",
    "placement_group",
    "placement_group_bundle_index",
    "scheduling_strategy",
    "time_limit_ms",
    "name",
    "runtime_env",
    "max_calls",
    "_generator_backpressure_num_objects",
}
_ACTOR_OPTIONS = {
    "num_cpus",
    "num_gpus",
    "resources",
    "memory",
    "name",
    "namespace",
    "lifetime",
    "max_restarts",
    "max_task_retries",
    "max_concurrency",
    "placement_group",
    "placement_group_bundle_index",
    "scheduling_strategy",
    "time_limit_ms",
    "get_if_exists",
    "runtime_env",
}


def _check(options, allowed, what):
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"unknown option{'s' if len(unknown) > 1 else ''} for {what}: {', '.join(unknown)}")
    _num_returns(options.get("num_returns", 1))
    _backpressure(options.get("_generator_backpressure_num_objects"))


def _num_returns(value):
    """A ``num_returns`` checked: a count, or ``"streaming"`` (a generator's
    items as they come; Ray's older ``"dynamic"`` is not supported)."""
    if value == "streaming":
        return value
    if value == "dynamic":
        raise ValueError(
            'num_returns="dynamic" is not supported: a generator\'s call returns its items as they come '
            '(num_returns="streaming", the default for generator functions)'
        )
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f'num_returns must be a non-negative integer or "streaming", not {value!r}')
    return value


def _is_generator(f):
    """Whether ``f`` is a generator function (``yield`` in its body), sync
    or async: its calls return an ``ObjectRefGenerator``, as in Ray."""
    import inspect

    f = getattr(f, "__func__", f)
    return inspect.isgeneratorfunction(f) or inspect.isasyncgenfunction(f)


# Items one host call may hand a generator's reader beyond the one asked
# for (the host hands out only what the task has already yielded).
_READ_AHEAD = 64


class ObjectRefGenerator:
    """The items of a generator task or actor method, in the order it
    yields them, each as soon as it is yielded — Ray's
    ``ObjectRefGenerator``. Iterate it (``for ref in gen``, or ``async
    for`` in async code) for an ``ObjectRef`` per item; it ends when the
    task does. A task that raises after yielding some items gives those,
    then a ref whose ``get`` raises its error, then the end. Read it where
    the call was made: it cannot be passed to another task."""

    __slots__ = ("_ref", "_next", "_ended", "_ahead")

    def __init__(self, ref):
        self._ref = ref
        # The index of the next item to ask the host for.
        self._next = 0
        self._ended = False
        # Items the host handed out (`next_items` gives those the task has
        # already yielded, up to _READ_AHEAD), not yet handed on.
        self._ahead = _collections.deque()

    def _advance(self, timeout_ms):
        if self._ahead:
            return self._ahead.popleft()
        if self._ended:
            raise StopIteration
        read = _call(_tasks.next_items, self._ref._handle, self._next, _READ_AHEAD, timeout_ms)
        if isinstance(read, _tasks.GeneratorRead_Items):
            self._next += len(read.value)
            self._ahead.extend(_ItemRef(i.item, i.value) for i in read.value)
            return self._ahead.popleft()
        self._ended = True
        if isinstance(read, _tasks.GeneratorRead_Failed):
            # The task failed after its items: its own ref, whose `get`
            # raises the error, is the last item.
            return self._ref
        raise StopIteration

    def __iter__(self):
        return self

    def __next__(self):
        return self._advance(None)

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return self._advance(None)
        except StopIteration:
            raise StopAsyncIteration from None

    def next_ready(self):
        """Whether the next item (or the end) is there now, without
        waiting."""
        if self._ahead or self._ended:
            return True
        try:
            self._ahead.appendleft(self._advance(0))
        except StopIteration:
            return True
        except exceptions.GetTimeoutError:
            return False
        return True

    def is_finished(self):
        """Whether the task has ended (its items may still be unread)."""
        return bool(_call(_tasks.wait, [self._ref._handle], 1, 0)[0])

    def completed(self):
        """The task's own ref: ready when it has ended; ``get`` gives
        ``None`` or raises its error."""
        return self._ref

    def __repr__(self):
        return f"ObjectRefGenerator({self._ref.hex()})"

    def __reduce__(self):
        raise TypeError("an ObjectRefGenerator is read where its call was made: it cannot be passed to a task or actor")


# The job's `runtime_env` env vars (`wray.init(runtime_env=...)`), under
# every task's and actor's own.
_job_env = {}


def _env_vars(runtime_env):
    """The environment variables a ``runtime_env`` sets. Only ``env_vars``
    has a meaning in a component; any other field is refused by name rather
    than ignored."""
    if runtime_env is None:
        return {}
    if not isinstance(runtime_env, dict):
        raise TypeError(f"runtime_env must be a dict, not {type(runtime_env).__name__}")
    others = sorted(set(runtime_env) - {"env_vars"})
    if others:
        raise ValueError(
            f"runtime_env field{'s' if len(others) > 1 else ''} {', '.join(others)} cannot be set in wray: a job's "
            "code and packages are in its component (`wray build` bundles a pyproject's dependencies) and its "
            "files are granted with `wray run --dir`; only env_vars applies"
        )
    env = runtime_env.get("env_vars") or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise TypeError("runtime_env's env_vars must be a dict of str to str")
    return env


def _calls(value):
    """``max_calls``: None (no limit; Ray's 0 means the same) or a count."""
    n = _count(value, "max_calls")
    return None if n == 0 else n


def _backpressure(value):
    """``_generator_backpressure_num_objects``: None or -1 (Ray's default:
    no bound) or a positive count of unread items."""
    if value is None or value == -1:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"_generator_backpressure_num_objects must be a positive int or -1, got {value!r}")
    return value


def _count(value, name):
    if value is None:
        return None
    if value == -1:
        return _FOREVER
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer or -1, not {value!r}")
    return value


# The WIT scheduling strategies without a payload (one object each serves
# every call).
_DEFAULT_SCHEDULING = _types.SchedulingStrategy_Default()
_SPREAD_SCHEDULING = _types.SchedulingStrategy_Spread()


def _wit_options(o):
    resources = dict(o.get("resources") or {})
    if o.get("num_gpus"):
        resources["GPU"] = float(o["num_gpus"])
    placement = None
    group = o.get("placement_group")
    strategy = o.get("scheduling_strategy")
    scheduling = _DEFAULT_SCHEDULING
    if strategy is not None and hasattr(strategy, "placement_group"):
        group = strategy.placement_group
        o = dict(o, placement_group_bundle_index=getattr(strategy, "placement_group_bundle_index", -1))
    elif hasattr(strategy, "node_id") and hasattr(strategy, "soft"):
        # A NodeAffinitySchedulingStrategy (wray.util.scheduling_strategies).
        if not isinstance(strategy.node_id, str) or not strategy.node_id:
            raise ValueError(f"NodeAffinitySchedulingStrategy needs a node id (a str), not {strategy.node_id!r}")
        affinity = _types.NodeAffinity(strategy.node_id, bool(strategy.soft))
        scheduling = _types.SchedulingStrategy_NodeAffinity(affinity)
    elif strategy == "SPREAD":
        scheduling = _SPREAD_SCHEDULING
    elif strategy not in (None, "DEFAULT"):
        raise ValueError(
            "scheduling_strategy must be \"DEFAULT\", \"SPREAD\", a PlacementGroupSchedulingStrategy or a "
            f"NodeAffinitySchedulingStrategy, not {strategy!r}"
        )
    if group is not None:
        index = o.get("placement_group_bundle_index", -1)
        placement = _types.BundleRef(group=group.id, index=0 if index in (None, -1) else index)
    retry = o.get("retry_exceptions", False)
    return _types.Options(
        num_cpus=None if o.get("num_cpus") is None else float(o["num_cpus"]),
        resources=[_types.ResourceAmount(name=k, amount=float(v)) for k, v in resources.items()],
        memory_limit=None if o.get("memory") is None else int(o["memory"]),
        time_limit_ms=o.get("time_limit_ms"),
        max_retries=_count(o.get("max_retries"), "max_retries"),
        # Ray also takes a list of exception types; wray retries every
        # exception then (it cannot tell types apart across the boundary).
        retry_exceptions=bool(retry),
        # A Python job's component reuses every task's instance already
        # (`wray build` marks it), so no call needs to ask.
        reuse_instance=False,
        max_calls=_calls(o.get("max_calls")),
        # A generator pauses while this many of its items wait unread.
        generator_backpressure=_backpressure(o.get("_generator_backpressure_num_objects")),
        name=o.get("name"),
        max_concurrency=o.get("max_concurrency"),
        max_restarts=_count(o.get("max_restarts"), "max_restarts"),
        max_task_retries=_count(o.get("max_task_retries"), "max_task_retries"),
        placement=placement,
        detached=o.get("lifetime") == "detached",
        checkpoint_every=None,
        scheduling=scheduling,
        env=list({**_job_env, **_env_vars(o.get("runtime_env"))}.items()),
    )


def _args(args, kwargs):
    """A call's arguments as WIT args: the keyword names first, then each
    argument on its own — a top-level ``ObjectRef`` as a ref the host
    resolves before the call (Ray's rule), anything else pickled."""
    if not kwargs:
        if not args:
            return _NO_ARGS
        return [_NO_KEYWORDS_ARG] + [_arg(a, _codec.to_value) for a in args]
    names = _types.Arg_Value(_codec.to_value(list(kwargs)))
    return [names] + [_arg(a, _codec.to_value) for a in (*args, *kwargs.values())]


def _arg(a, encode):
    """One argument: a top-level ``ObjectRef`` as a ref, anything else as
    the value ``encode`` makes of it."""
    if isinstance(a, ObjectRef):
        return _types.Arg_Object(a._handle)
    return _types.Arg_Value(encode(a))


# The keyword names of a call without keywords, as the WIT argument (only
# read by the host, so one object serves every call).
_NO_KEYWORDS_ARG = _types.Arg_Value(_types.Value(data=_codec.NO_KEYWORDS, refs=[]))

# The arguments of a call without any (the host only reads the list; callers
# that add to it make a new one).
_NO_ARGS = [_NO_KEYWORDS_ARG]


def _foreign_args(args, kwargs, method):
    """A call's arguments for an actor in another language (a Rust job's):
    positional only, each plain data in the cross-language encoding
    (``wray._value``) or a top-level ``ObjectRef``."""
    if kwargs:
        raise TypeError(f"{method}: an actor in another language takes positional arguments only")
    out = []
    for i, a in enumerate(args):
        try:
            out.append(_arg(a, _codec.to_plain_value))
        except TypeError as e:
            raise TypeError(f"{method}: argument {i}: {e}") from None
    return out


def _method_returns(cls):
    """``@wray.method(num_returns=n)`` of ``cls``'s methods, n other than 1,
    and ``"streaming"`` for its generator methods."""
    found = {}
    for name in dir(cls):
        m = getattr(cls, name, None)
        n = getattr(m, "__wray_num_returns__", None)
        if n is not None:
            found[name] = n
        elif callable(m) and _is_generator(m):
            found[name] = "streaming"
    return found


def _item_of(values, index, count, what):
    """Item ``index`` of what a task with ``num_returns=count`` returned."""
    if not isinstance(values, (tuple, list)) or len(values) != count:
        got = f"{len(values)} values" if isinstance(values, (tuple, list)) else f"one {type(values).__name__}"
        raise ValueError(f"{what} returned {got}, but num_returns={count}")
    return values[index]


def _returns(ref, count, what):
    """The refs a call with ``num_returns=count`` returns: ``ref`` itself
    for 1, ``None`` for 0, else one ref per item of the sequence it returns
    — each made by a task of no CPU that reads its item (the result is one
    object in wray; a failure reaches every item's ``get``)."""
    if count == "streaming":
        return ObjectRefGenerator(ref)
    if count == 1:
        return ref
    if count == 0:
        return None
    return [_item.options(name=f"{what}[{i}]").remote(ref, i, count, what) for i in range(count)]


class _Remote:
    """What remote functions and actor classes share: options (a copy with
    others), and the function or class itself, pickled by value and put in
    the object store once per instance (``_shipped``)."""

    _allowed = set()
    _what = ""

    def _shipped(self, obj):
        ref = self.__dict__.get("_shipped_ref")
        if ref is None:
            ref = ObjectRef(_call(_tasks.put, _codec.to_value(obj)))
            self._shipped_ref = ref
        return ref

    def options(self, **options):
        """The same function or class with other options for the next
        ``remote`` calls."""
        merged = dict(self._options, **options)
        _check(merged, self._allowed, self._what)
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._options = merged
        return clone

    def __getstate__(self):
        # A ref is this instance's: another one puts the object again.
        state = dict(self.__dict__)
        state.pop("_shipped_ref", None)
        return state


class RemoteFunction(_Remote):
    """A function made remote with ``@wray.remote``: call ``.remote(...)``."""

    _allowed = _TASK_OPTIONS
    _what = "a remote function"

    def __init__(self, function, options):
        _check(options, self._allowed, self._what)
        self._function = function
        self._options = options
        _functools.update_wrapper(self, function)

    def __call__(self, *args, **kwargs):
        name = self._function.__name__
        raise TypeError(
            f"Remote functions cannot be called directly. Instead of running '{name}()', try '{name}.remote()'."
        )

    def remote(self, *args, **kwargs):
        """Submits the function as a task; returns the ref of its result."""
        fn = self._shipped(self._function)
        wit_args = [_types.Arg_Object(fn._handle)] + _args(args, kwargs)
        name = self._options.get("name") or self._function.__qualname__
        ref = ObjectRef(_call(_tasks.submit, name, wit_args, _wit_options(self._options)))
        default = "streaming" if _is_generator(self._function) else 1
        return _returns(ref, self._options.get("num_returns", default), name)


# Reads one item of a result for `num_returns` (above).
_item = RemoteFunction(_item_of, {"num_cpus": 0})


class ActorClass(_Remote):
    """A class made remote with ``@wray.remote``: ``Cls.remote(...)`` creates
    an actor and returns its handle."""

    _allowed = _ACTOR_OPTIONS
    _what = "an actor class"

    def __init__(self, cls, options):
        _check(options, self._allowed, self._what)
        self._cls = cls
        self._options = options
        # Once per class, not per actor: its handles carry it.
        self._method_returns = _method_returns(cls)
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__doc__ = cls.__doc__

    def __call__(self, *args, **kwargs):
        name = self._cls.__name__
        raise TypeError(
            f"Actors cannot be instantiated directly. Instead of '{name}()', use '{name}.remote()'."
        )

    def remote(self, *args, **kwargs):
        """Creates the actor (its constructor runs in its own instance)."""
        o = self._options
        if o.get("get_if_exists") and o.get("name"):
            try:
                return get_actor(o["name"])
            except ValueError:
                pass
        if o.get("lifetime") == "detached":
            # A detached actor outlives this job, and the head records its
            # constructor's arguments to re-create it: they must hold no
            # refs to this job's objects, so the class goes inline.
            shipped = _types.Arg_Value(_codec.to_value(self._cls))
        else:
            shipped = _types.Arg_Object(self._shipped(self._cls)._handle)
        wit_args = [shipped] + _args(args, kwargs)
        actor = _call(_actors.create, self._cls.__qualname__, wit_args, _wit_options(o))
        return _held(actor, self._cls.__qualname__, self._method_returns)


class ActorMethod:
    """``handle.method``: call ``.remote(...)`` to queue a call."""

    # No reference to the handle: the handle keeps its methods, and a
    # method keeping its handle would make a cycle that only Python's
    # cyclic collector frees — the actor would outlive its last handle by
    # however long that takes.
    __slots__ = ("_name", "_actor", "_label", "_num_returns", "_backpressure")

    def __init__(self, handle, name):
        self._name = name
        # Worked out once per method, not per call (a handle keeps its
        # methods): the WIT id, and for an actor in another language the
        # name its argument errors carry (None for a Python actor).
        self._actor = handle._id()
        self._label = f"{handle._class_name}.{name}" if handle._foreign() else None
        self._num_returns = handle._method_returns.get(name, 1)
        self._backpressure = None

    def remote(self, *args, **kwargs):
        """Queues the call (calls from one caller run in order); returns the
        ref of its result."""
        if self._label is None:
            wit_args = _args(args, kwargs)
        else:
            wit_args = _foreign_args(args, kwargs, self._label)
        try:
            if self._backpressure is None:
                ref = ObjectRef(_actors.call(self._actor, self._name, wit_args))
            else:
                options = _actors.CallOptions(generator_backpressure=self._backpressure)
                ref = ObjectRef(_actors.call_with(self._actor, self._name, wit_args, options))
        except _Err as err:
            _raise(err)
        return _returns(ref, self._num_returns, self._name)

    def options(self, **options):
        """Per-call options: ``num_returns``,
        ``_generator_backpressure_num_objects`` (a generator method pauses
        while that many of its items wait unread; -1: no bound) — ``name``
        is accepted for Ray compatibility."""
        _check(options, {"num_returns", "name", "_generator_backpressure_num_objects"}, "an actor method")
        clone = ActorMethod.__new__(ActorMethod)
        for slot in ActorMethod.__slots__:
            setattr(clone, slot, getattr(self, slot))
        clone._num_returns = options.get("num_returns", self._num_returns)
        if "_generator_backpressure_num_objects" in options:
            clone._backpressure = _backpressure(options["_generator_backpressure_num_objects"])
        return clone

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actor methods cannot be called directly. Instead of '{self._name}()', try '{self._name}.remote()'.")


# Methods an actor handle keeps (see ``ActorHandle.__getattr__``).
_MAX_HANDLE_METHODS = 64


class ActorHandle:
    """A handle to an actor: ``handle.method.remote(...)``. Handles can be
    passed to tasks and other actors and returned from them.

    Handles keep their actor alive, as in Ray: once every handle to it is
    gone (in this job's instances, nested in values and arguments), the
    actor runs the calls already queued to it and ends, freeing its
    resources and its name. Detached actors, and an actor a handle of which
    went to another node of a cluster, live until killed."""

    def __init__(self, hi, lo, class_name, method_returns=None, keep=None):
        self._hi = hi
        self._lo = lo
        self._class_name = class_name
        # `@wray.method(num_returns=n)` of the class's methods, by name
        # (only those other than 1); travels with the handle.
        self._method_returns = method_returns or {}
        # The ref that keeps the actor alive (`actors.handle`), or None
        # for an actor the host keeps until it is killed.
        self._keep = keep

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__") and name != "__ray_terminate__":
            raise AttributeError(name)
        method = ActorMethod(self, name)
        # Kept on the handle, as Ray's handles hold their methods, so the
        # next ``handle.name`` is a plain attribute read; at most
        # _MAX_HANDLE_METHODS, in case a job makes names up as it runs.
        if len(self.__dict__) < _MAX_HANDLE_METHODS:
            self.__dict__[name] = method
        return method

    def __repr__(self):
        return f"Actor({self._class_name}, {self._hi:016x}{self._lo:016x})"

    # Handles to one actor are equal, however they were obtained (created,
    # passed along, `get_actor`), as Ray's are: sets and dict keys of
    # handles hold each actor once.
    def __eq__(self, other):
        return isinstance(other, ActorHandle) and (self._hi, self._lo) == (other._hi, other._lo)

    def __hash__(self):
        return hash((self._hi, self._lo))

    def _id(self):
        actor = self.__dict__.get("_wit_id")
        if actor is None:
            actor = self._wit_id = _types.ActorId(hi=self._hi, lo=self._lo)
        return actor

    def _foreign(self):
        # A Rust actor's class is its type path (`crate::module::Type`);
        # a Python class's name never holds "::".
        return "::" in self._class_name

    def __reduce__(self):
        # The keeping ref goes as a nested ref: the value holding the
        # handle keeps the actor alive.
        return (ActorHandle, (self._hi, self._lo, self._class_name, self._method_returns, self._keep))


def _held(actor, class_name, method_returns):
    """A handle on the WIT actor id ``actor`` that keeps it alive as the
    host allows."""
    keep = _call(_actors.handle, actor)
    return ActorHandle(actor.hi, actor.lo, class_name, method_returns, None if keep is None else ObjectRef(keep))


def method(*args, **kwargs):
    """Ray's ``@ray.method(num_returns=...)``: the method's calls return that
    many refs — through handles made by ``Cls.remote`` and passed on from
    there, and ``get_actor`` handles of the script's own classes (another
    job's class is known by name only: its calls take
    ``.options(num_returns=...)``). ``concurrency_group`` is accepted and
    means nothing."""
    _check(kwargs, {"num_returns", "concurrency_group"}, "a method")

    def wrap(f):
        if kwargs.get("num_returns", 1) != 1:
            f.__wray_num_returns__ = kwargs["num_returns"]
        return f

    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]
    return wrap


def remote(*args, **options):
    """``@wray.remote`` or ``@wray.remote(num_cpus=..., ...)`` on a
    function (a task) or a class (an actor)."""

    def make(target):
        if isinstance(target, type):
            return ActorClass(target, options)
        if callable(target):
            return RemoteFunction(target, options)
        raise TypeError(f"@wray.remote applies to functions and classes, not {type(target).__name__}")

    if len(args) == 1 and not options and callable(args[0]):
        return make(args[0])
    if args:
        raise TypeError("@wray.remote takes keyword options only, e.g. @wray.remote(num_cpus=2)")
    return make


def _refs(refs, what):
    if isinstance(refs, ObjectRef):
        return [refs], True
    try:
        refs = list(refs)
    except TypeError:
        raise TypeError(f"{what} takes an ObjectRef or a list of them, not {type(refs).__name__}") from None
    for r in refs:
        if not isinstance(r, ObjectRef):
            raise TypeError(f"{what} takes ObjectRefs, got {type(r).__name__}")
    return refs, False


def _timeout_ms(timeout):
    if timeout is None:
        return None
    if timeout < 0:
        raise ValueError("timeout must be non-negative")
    return int(timeout * 1000)


def get(object_refs, *, timeout=None):
    """The value of an object, or the values of a list of them, blocking
    until they exist (or ``timeout`` seconds pass: ``GetTimeoutError``). A
    failed task's error is raised here (``RayTaskError`` with its
    traceback)."""
    refs, single = _refs(object_refs, "wray.get")
    loads = _codec.loads
    if single:
        if refs[0]._value is not None:
            return loads(refs[0]._take_value())
        return loads(_call(_tasks.get_one, refs[0]._handle, _timeout_ms(timeout)))
    datas = _call(_tasks.get, [r._handle for r in refs], _timeout_ms(timeout))
    return [loads(d) for d in datas]


def put(value):
    """Stores ``value`` in the object store; returns its ref."""
    if isinstance(value, ObjectRef):
        raise TypeError("Calling 'put' on an ObjectRef is not allowed")
    return ObjectRef(_call(_tasks.put, _codec.to_value(value)))


def wait(object_refs, *, num_returns=1, timeout=None, fetch_local=True):
    """Waits until ``num_returns`` of ``object_refs`` are ready or
    ``timeout`` seconds pass; returns ``(ready, not_ready)``, each in the
    order given. An ``ObjectRefGenerator`` among them is ready when its
    next item is there or it has ended, as in Ray."""
    if isinstance(object_refs, (list, tuple)) and any(isinstance(r, ObjectRefGenerator) for r in object_refs):
        return _wait_with_generators(list(object_refs), num_returns, timeout)
    refs, single = _refs(object_refs, "wray.wait")
    if single:
        raise TypeError("wray.wait takes a list of ObjectRefs")
    if not 0 <= num_returns <= len(refs):
        raise ValueError(f"num_returns must be between 0 and {len(refs)}, not {num_returns}")
    if not refs:
        return [], []
    ready = _call(_tasks.wait, [r._handle for r in refs], num_returns, _timeout_ms(timeout))
    done = [r for r, ok in zip(refs, ready) if ok][:num_returns] if num_returns else []
    chosen = set(map(id, done))
    return done, [r for r in refs if id(r) not in chosen]


# How long `wait` over generators blocks on its plain refs between looks at
# the generators (whose readiness the host has no single call for).
_GENERATOR_WAIT_STEP = 0.005


def _wait_with_generators(items, num_returns, timeout):
    """``wait`` over refs and generators: a generator is ready when
    ``next_ready()`` says so. Looks again every few milliseconds, blocking
    on the plain refs in between."""
    for r in items:
        if not isinstance(r, (ObjectRef, ObjectRefGenerator)):
            raise TypeError(f"wray.wait takes ObjectRefs and ObjectRefGenerators, got {type(r).__name__}")
    if not 0 <= num_returns <= len(items):
        raise ValueError(f"num_returns must be between 0 and {len(items)}, not {num_returns}")
    deadline = None if timeout is None else _time.monotonic() + max(0.0, timeout)
    plain = [r for r in items if isinstance(r, ObjectRef)]
    while True:
        ready_refs = set()
        if plain:
            mask = _call(_tasks.wait, [r._handle for r in plain], len(plain), 0)
            ready_refs = {id(r) for r, ok in zip(plain, mask) if ok}
        ready = [
            r for r in items if (r.next_ready() if isinstance(r, ObjectRefGenerator) else id(r) in ready_refs)
        ]
        left = None if deadline is None else deadline - _time.monotonic()
        if len(ready) >= num_returns or (left is not None and left <= 0):
            done = ready[:num_returns]
            chosen = set(map(id, done))
            return done, [r for r in items if id(r) not in chosen]
        step = _GENERATOR_WAIT_STEP if left is None else min(_GENERATOR_WAIT_STEP, left)
        pending = [r for r in plain if id(r) not in ready_refs]
        if pending:
            # Wakes early when one of them settles.
            _call(_tasks.wait, [r._handle for r in pending], 1, max(1, int(step * 1000)))
        else:
            _time.sleep(step)


def cancel(object_ref, *, force=False, recursive=True):
    """Cancels the task producing ``object_ref`` if it has not finished;
    ``wray.get`` on it then raises ``TaskCancelledError`` (a generator's
    reader gets the items yielded so far, then that error)."""
    if isinstance(object_ref, ObjectRefGenerator):
        object_ref = object_ref._ref
    if not isinstance(object_ref, ObjectRef):
        raise TypeError("wray.cancel takes an ObjectRef")
    _call(_tasks.cancel, object_ref._handle)


def kill(actor, *, no_restart=True):
    """Kills an actor; with ``no_restart=False`` it restarts if it has
    restarts left."""
    if not isinstance(actor, ActorHandle):
        raise TypeError("wray.kill takes an actor handle")
    _call(_actors.kill, _types.ActorId(hi=actor._hi, lo=actor._lo), no_restart)


def get_actor(name, namespace=None):
    """The handle of the named actor (created with ``.options(name=...)``);
    ``ValueError`` if there is none."""
    try:
        actor, cls = _actors.get_named(name)
    except _Err as err:
        if isinstance(err.value, _types.Error_InvalidArgument):
            raise ValueError(f"Failed to look up actor with name '{name}': {err.value.value}") from None
        _raise(err)
    try:
        return _held(actor, cls, _script_method_returns(cls))
    except exceptions.RayActorError as err:
        # Found ending (its last handle went a moment ago, its name not yet
        # freed): Ray's lookup of a dead actor fails with ValueError too.
        raise ValueError(f"Failed to look up actor with name '{name}': {err}") from None


def _script_method_returns(class_name):
    """``@wray.method(num_returns=...)`` of the script's actor class named
    ``class_name``, found without importing anything; {} for another job's
    or another language's class."""
    main = _sys.modules.get("__main__")
    found = getattr(main, class_name, None) if main is not None and "." not in class_name else None
    return found._method_returns if isinstance(found, ActorClass) else {}


def _resources(amounts):
    return {a.name: a.amount for a in amounts}


def cluster_resources():
    """Total resources of the cluster: ``{"CPU": 4.0, ...}``."""
    return _resources(_cluster.cluster_resources())


def available_resources():
    """Resources not held by running tasks and actors right now."""
    return _resources(_cluster.available_resources())


def nodes():
    """Every node of the cluster, the head first, as Ray's ``ray.nodes()``:
    a dict per node with Ray's keys ``NodeID``, ``Alive`` (and ``alive``),
    ``NodeManagerAddress`` (its IP), ``NodeManagerPort``, ``NodeName`` and
    ``Resources`` (all its resources), and wray's ``Available`` (not held
    right now) and ``IsHead``. On an embedded runtime that is one node with
    no address (``""`` and port 0); on a worker the head is asked
    (``InvalidArgumentError`` when it cannot be reached)."""
    listed = []
    for n in _call(_cluster.nodes):
        host, _, port = n.address.rpartition(":")
        host = host.strip("[]")
        listed.append({
            "NodeID": n.node_id,
            "Alive": n.alive,
            "alive": n.alive,
            "NodeManagerAddress": host,
            "NodeManagerPort": int(port) if port.isdigit() else 0,
            "NodeName": host,
            "Resources": _resources(n.resources),
            "Available": _resources(n.available),
            "IsHead": n.is_head,
        })
    return listed


class RuntimeContext:
    """Where the caller runs (Ray's ``get_runtime_context()``)."""

    def __init__(self, ctx):
        self._ctx = ctx

    def get_job_id(self):
        return f"{self._ctx.job_id:08x}"

    def get_node_id(self):
        return self._ctx.node_id

    def get_task_id(self):
        return self._ctx.task_id or None

    def get_actor_id(self):
        a = self._ctx.actor_id
        return None if a is None else f"{a.hi:016x}{a.lo:016x}"

    def get_actor_name(self):
        """The name the caller's actor was created with; None for an actor
        without one, and outside an actor."""
        return self._ctx.actor_name

    def get_assigned_resources(self):
        """What the caller holds: a task's demand while it runs
        (``{"CPU": 1.0}`` by default), an actor's for its life, ``{}`` in
        the driver."""
        return _resources(self._ctx.resources)

    @property
    def current_actor(self):
        """A handle to the actor whose method is running (Ray's); passed to
        tasks and other actors like any handle. ``RuntimeError`` outside
        an actor."""
        a = self._ctx.actor_id
        if a is None:
            raise RuntimeError("current_actor is only available in an actor")
        from . import _entry

        cls = type(_entry._actor).__qualname__
        return _held(a, cls, _script_method_returns(cls))

    @property
    def namespace(self):
        """``"default"``: wray has one namespace (named actors are the job's
        and the cluster's detached ones, ``ray.util.list_named_actors``)."""
        return "default"

    @property
    def job_id(self):
        return self.get_job_id()

    @property
    def node_id(self):
        return self.get_node_id()


def get_gpu_ids():
    """The GPUs the caller's tensors run on, by index on its node (Ray's
    ``ray.get_gpu_ids()``): ``[n]`` in a task or actor holding ``GPU``
    (``num_gpus``) on a node that has one, ``[]`` otherwise — in the driver,
    and on the CPU path."""
    from wit_world.imports import tensors

    return _gpu_ids(tensors.device_info())


def _gpu_ids(device):
    """``[n]`` from a device description ``gpu n: adapter``; ``[]`` for
    ``cpu``."""
    if not device.startswith("gpu "):
        return []
    return [int(device[4:].split(":", 1)[0])]


def get_runtime_context():
    """Where the caller runs."""
    return RuntimeContext(_cluster.context())


def init(*args, runtime_env=None, **kwargs):
    """Accepted for Ray compatibility: a wray job runs in the runtime ``wray
    run`` gave it (its address decides the cluster), so the arguments do
    nothing — but ``runtime_env={"env_vars": {...}}``, whose variables every
    task and actor the job starts then sees (under their own ``runtime_env``,
    and inherited by what they start, as in Ray). Other ``runtime_env``
    fields are refused with ``ValueError``."""
    global _job_env
    _job_env = dict(_env_vars(runtime_env))
    return None


def is_initialized():
    """Always true inside a job."""
    return True


def shutdown(*args, **kwargs):
    """Accepted for Ray compatibility; the job ends when its driver does."""
    return None


# `ray.util.placement_group(...)` through `import wray as ray` (imported
# last: it uses the names above).
from . import util  # noqa: E402
from . import actor  # noqa: E402
