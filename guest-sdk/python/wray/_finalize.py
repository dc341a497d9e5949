"""A cheaper finalizer for the host handles componentize-py gives Python.

Every ``object-ref`` a host call returns (one per ``.remote()``) becomes a
Python object with a ``weakref.finalize`` that drops the handle when the
object dies. ``weakref.finalize`` is written in Python and sets a class
attribute on every construction, which invalidates CPython's attribute cache
for the class: constructing one and running it costs about 3 µs in an
instance, a quarter of an asynchronous actor call's cost to the caller
(``WRAY_PROFILER=perfmap`` with ``perf``).

componentize-py looks ``weakref.finalize`` up once, while it initializes the
component — after importing the app module, which imports this package — and
keeps what it found. So ``install`` puts ``Finalizer`` in its place for that
moment, and ``uninstall``, called by the first export call of every instance,
puts the original back: the user's code only ever sees the standard library's
``weakref.finalize``. Should a componentize-py release look it up at another
time, it simply keeps the standard one (``COMPONENTIZE_PY_VERSION`` pins the
release the tests run).

``Finalizer`` keeps the parts of ``weakref.finalize``'s contract that
componentize-py uses: call ``func(*args)`` once when ``obj`` dies (or when
called), never after ``detach()``, which returns ``(obj, func, args,
kwargs)``; and stay alive on its own (``_live``), so that an object that dies
in a reference cycle still has its handle dropped — the cyclic collector
skips weakref callbacks that are themselves garbage.
"""

import weakref

_standard = weakref.finalize
_ref = weakref.ref

# Finalizers whose object is alive: what keeps them alive.
_live = set()


class Finalizer:
    __slots__ = ("_ref", "_func", "_args", "__weakref__")

    def __init__(self, obj, func, /, *args):
        self._ref = _ref(obj, self)
        self._func = func
        self._args = args
        _live.add(self)

    def __call__(self, _=None):
        """Runs ``func(*args)`` if it has not run and was not detached."""
        if self in _live:
            _live.discard(self)
            return self._func(*self._args)
        return None

    def detach(self):
        """Takes the finalizer off its object: ``(obj, func, args, kwargs)``
        if it was still pending, else ``None``."""
        if self in _live:
            _live.discard(self)
            obj = self._ref()
            if obj is not None:
                return (obj, self._func, self._args, {})
        return None

    @property
    def alive(self):
        return self in _live


def install():
    """``Finalizer`` as ``weakref.finalize``, for componentize-py's
    initialization (build time)."""
    weakref.finalize = Finalizer


def uninstall():
    """The standard ``weakref.finalize`` back (each instance's first call)."""
    weakref.finalize = _standard
