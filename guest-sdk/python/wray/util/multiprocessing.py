"""Ray's ``ray.util.multiprocessing.Pool``: Python's ``multiprocessing.Pool``
API, its processes being wray actors.

``Pool(processes)`` starts that many worker actors (default: the cluster's
CPUs), each holding one CPU and running ``initializer(*initargs)`` once, in
its constructor, as a pool process does. Items travel in chunks, one actor
call per chunk, each actor working through its calls in turn; ``map`` and
``starmap`` choose chunks as Python does (about four per process), the
``imap`` family takes ``chunksize`` (1 by default). Globals the initializer
sets are seen by ``func`` when both are defined in the same module (the
script, typically), as in a pool process. ``maxtasksperchild`` and
``ray_address`` are accepted and ignored. An exception in ``func``
fails the result it belongs to, raised by ``get`` or the iterator — an
instance of the exception ``func`` raised, as in Python (see
``wray.exceptions``).
"""

import types as _pytypes

import wray

__all__ = ["AsyncResult", "Pool", "TimeoutError"]

TimeoutError = wray.exceptions.GetTimeoutError


class _Worker:
    """One pool process."""

    def __init__(self, initializer, initargs):
        self._globals = None
        if initializer is not None:
            initializer(*initargs)
            self._globals = getattr(initializer, "__globals__", None)

    def run(self, func, chunk, star):
        func = self._beside_initializer(func)
        return [func(*item) for item in chunk] if star else [func(item) for item in chunk]

    def _beside_initializer(self, func):
        """``func``, seeing the globals the initializer set when both come
        from the same module. A pool process has one module namespace; here
        each function shipped from the script (pickled by value) arrives
        with its own copy of the script's globals, and a global the
        initializer set (the usual way to hand state to ``func``) would be
        missing from ``func``'s. The initializer's values win over the
        copies ``func`` carries (those are the driver's, from before)."""
        g = self._globals
        if (
            g is None
            or not isinstance(func, _pytypes.FunctionType)
            or func.__globals__ is g
            or func.__module__ != g.get("__name__")
        ):
            return func
        for name, value in func.__globals__.items():
            g.setdefault(name, value)
        moved = _pytypes.FunctionType(func.__code__, g, func.__name__, func.__defaults__, func.__closure__)
        moved.__kwdefaults__ = func.__kwdefaults__
        return moved


_PoolWorker = wray.remote(num_cpus=1)(_Worker)


def _chunks(items, size):
    return [items[i : i + size] for i in range(0, len(items), size)]


class AsyncResult:
    """The result of an ``*_async`` call (Python's ``AsyncResult``)."""

    def __init__(self, refs, finish, callback=None, error_callback=None):
        self._refs = refs
        self._finish = finish
        self._callback = callback
        self._error_callback = error_callback
        self._done = False
        self._value = None
        self._error = None

    def ready(self):
        """Whether every chunk has finished."""
        if self._done:
            return True
        ready, _ = wray.wait(self._refs, num_returns=len(self._refs), timeout=0)
        return len(ready) == len(self._refs)

    def wait(self, timeout=None):
        """Waits up to ``timeout`` seconds for the result."""
        if self._refs and not self._done:
            wray.wait(self._refs, num_returns=len(self._refs), timeout=timeout)

    def successful(self):
        """Whether the call finished without an exception (``ValueError``
        while it has not finished)."""
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        self._settle(None)
        return self._error is None

    def get(self, timeout=None):
        """The result, or the exception ``func`` raised; ``TimeoutError``
        after ``timeout`` seconds."""
        self._settle(timeout)
        if self._error is not None:
            raise self._error
        return self._value

    def _settle(self, timeout):
        if self._done:
            return
        try:
            value = self._finish(wray.get(self._refs, timeout=timeout))
        except wray.exceptions.GetTimeoutError:
            raise
        except Exception as e:
            self._done, self._error = True, e
            if self._error_callback is not None:
                self._error_callback(e)
            return
        self._done, self._value = True, value
        if self._callback is not None:
            self._callback(value)


class Pool:
    """A pool of ``processes`` worker actors (see the module's documentation)."""

    def __init__(self, processes=None, initializer=None, initargs=None, maxtasksperchild=None, ray_address=None):
        if processes is None:
            processes = max(1, int(wray.cluster_resources().get("CPU", 1)))
        if not isinstance(processes, int) or processes < 1:
            raise ValueError("processes must be a positive int")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._processes = processes
        self._workers = [_PoolWorker.remote(initializer, tuple(initargs or ())) for _ in range(processes)]
        self._next = 0
        self._closed = False

    def _check_running(self):
        if self._closed:
            raise ValueError("Pool not running")

    def _submit(self, func, chunk, star):
        worker = self._workers[self._next % len(self._workers)]
        self._next += 1
        return worker.run.remote(func, chunk, star)

    def _map_refs(self, func, iterable, chunksize, star):
        items = list(iterable)
        if chunksize is None:
            chunksize, extra = divmod(len(items), self._processes * 4)
            chunksize += 1 if extra else 0
        chunksize = max(1, chunksize)
        return [self._submit(func, c, star) for c in _chunks(items, chunksize)]

    @staticmethod
    def _flatten(results):
        return [r for chunk in results for r in chunk]

    def apply(self, func, args=(), kwds=None):
        """``func(*args, **kwds)`` in a pool process."""
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds=None, callback=None, error_callback=None):
        self._check_running()
        kwds = kwds or {}
        ref = self._submit(_Call(func, kwds), [tuple(args)], True)
        return AsyncResult([ref], lambda results: results[0][0], callback, error_callback)

    def map(self, func, iterable, chunksize=None):
        """``[func(x) for x in iterable]``, computed by the pool."""
        return self.map_async(func, iterable, chunksize).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        self._check_running()
        refs = self._map_refs(func, iterable, chunksize, False)
        return AsyncResult(refs, self._flatten, callback, error_callback)

    def starmap(self, func, iterable, chunksize=None):
        """``[func(*args) for args in iterable]``, computed by the pool."""
        return self.starmap_async(func, iterable, chunksize).get()

    def starmap_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        self._check_running()
        refs = self._map_refs(func, [tuple(a) for a in iterable], chunksize, True)
        return AsyncResult(refs, self._flatten, callback, error_callback)

    def imap(self, func, iterable, chunksize=1):
        """``map``'s results one by one, in order, as they are ready."""
        self._check_running()
        refs = self._map_refs(func, iterable, chunksize, False)

        def results():
            for ref in refs:
                yield from wray.get(ref)

        return results()

    def imap_unordered(self, func, iterable, chunksize=1):
        """``map``'s results one by one, in the order they finish."""
        self._check_running()
        refs = self._map_refs(func, iterable, chunksize, False)

        def results():
            pending = list(refs)
            while pending:
                ready, pending = wray.wait(pending, num_returns=1)
                yield from wray.get(ready[0])

        return results()

    def close(self):
        """No more work may be submitted."""
        self._closed = True

    def terminate(self):
        """Stops the pool's processes now (work in flight is lost)."""
        self._closed = True
        for w in self._workers:
            wray.kill(w)
        self._workers = []

    def join(self):
        """Waits for the work submitted (after ``close``)."""
        if not self._closed:
            raise ValueError("Pool is still running")
        for w in self._workers:
            # A call queued behind the rest of the actor's work.
            wray.get(w.run.remote(_identity, [], False))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.terminate()


class _Call:
    """``func`` with keyword arguments, called with positional ones."""

    def __init__(self, func, kwds):
        self.func = func
        self.kwds = kwds

    def __call__(self, *args):
        return self.func(*args, **self.kwds)


def _identity(x):
    return x
