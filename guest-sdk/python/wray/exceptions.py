"""The errors a wray job sees, under Ray's names (``ray.exceptions``).

Every failure the host reports (the WIT ``error`` variant) becomes one of
these at the call that observed it: ``wray.get`` of a failed task raises
``RayTaskError`` carrying the remote traceback, a dead actor raises
``RayActorError`` (also reachable as ``ActorDiedError``), and so on.

A task that raised a Python exception fails with a ``RayTaskError`` that is
also an instance of that exception's class when this instance knows it (a
built-in exception, or one defined in the script or a module it imported),
as Ray's is: ``except ZeroDivisionError`` around ``wray.get`` catches it.
"""

import builtins
import re
import sys


class RayError(Exception):
    """The base of every error wray raises for a remote failure."""


class RayTaskError(RayError):
    """A task or actor method raised, trapped or ran past a limit.

    ``function`` names it (``f`` or ``Class.method``); ``traceback_str`` is
    the remote traceback as the task printed it (or the host's reason when
    the task could not report one: a trap, the memory or time limit).
    """

    #: The exception the task raised, rebuilt here (Ray's ``cause``): an
    #: instance of its class — when this instance knows the class, see the
    #: module's documentation — whose one argument is the first line of the
    #: message its traceback ends with (the exception itself does not
    #: travel, its traceback does). None for a failure that was no Python
    #: exception: a trap, a limit.
    cause = None

    def __init__(self, function, traceback_str):
        self.function = function
        self.traceback_str = traceback_str
        super().__init__(function, traceback_str)

    def __str__(self):
        return f"{self.function} failed:\n{self.traceback_str}"

    def as_instanceof_cause(self):
        """This error as an instance of its cause's class too (Ray's): what
        ``wray.get`` raises already when it can; else this error."""
        return self


class OutOfMemoryError(RayTaskError):
    """A task or actor method ran past its memory limit (``memory=`` /
    ``wray run --memory-limit``). Ray raises its ``OutOfMemoryError`` when
    its memory monitor kills a worker; wray's limit is per instance, and the
    error is also a ``RayTaskError`` naming the limit in its message."""


#: What the host's reason for a task stopped at its memory limit says (the
#: instance's linear memory, or its tensors).
_MEMORY_LIMIT = "memory limit exceeded"


class RayActorError(RayError):
    """The actor is dead: killed, its constructor failed, restarts used up."""

    def __init__(self, message=""):
        self.message = message
        super().__init__(message)

    def __str__(self):
        return self.message


ActorDiedError = RayActorError


class ObjectLostError(RayError):
    """The object no longer exists and cannot be rebuilt."""


class GetTimeoutError(RayError, TimeoutError):
    """``wray.get`` gave up after its ``timeout``."""


class TaskCancelledError(RayError):
    """The task was cancelled (``wray.cancel``) before it produced a value."""


class ObjectStoreFullError(RayError):
    """The node's object store cannot take the object."""


class InvalidArgumentError(RayError, ValueError):
    """The host refused a request: an unknown id, an impossible option, a
    name already taken, a demand no node can meet."""


# The exception line of a formatted traceback: its class (dotted when it is
# not the script's or a built-in) at the start of a line, then ": message"
# or nothing. A failure re-raised from a nested ``get`` reads
# ``...RayTaskError(Cause)``: the cause is the class wanted.
_EXCEPTION_LINE = re.compile(r"(?:[\w.]*RayTaskError\()?([A-Za-z_][\w.]*)\)?(?::|$)")

# Classes made so far, one per cause class: a job raises few kinds, and
# this bounds what one that raises many keeps.
_MAX_DUAL_CLASSES = 256
_dual_classes = {}


def _exception_line(traceback_str):
    """The exception line of ``traceback_str`` — the first line at the left
    margin after the last frame, or the first line when every frame was
    wray's own (an exception raised by the SDK, such as a wrong
    ``num_returns`` count, has none left) — as its class name and message,
    or None (a trap, a limit). The name is only trusted once it resolves to
    an exception class."""
    lines = traceback_str.splitlines()
    last_frame = None
    for i, line in enumerate(lines):
        if line.startswith("  File "):
            last_frame = i
    if last_frame is None:
        if lines and not lines[0].startswith("Traceback") and ":" in lines[0]:
            return _split(lines[0])
        return None
    for line in lines[last_frame + 1 :]:
        if line and not line[0].isspace():
            return _split(line)
    return None


def _split(line):
    """An exception line's class name and message (its first line)."""
    m = _EXCEPTION_LINE.match(line)
    if not m:
        return None
    rest = line[m.end() :]
    return m.group(1), rest[1:] if rest.startswith(" ") else rest


def _rebuilt(cls, message):
    """An instance of ``cls`` with ``message`` as its one argument (none
    when it is empty), made without running the class's own ``__init__``
    (whose parameters are the task's), or None if the class will not be
    made so."""
    try:
        cause = cls.__new__(cls)
        BaseException.__init__(cause, *([message] if message else []))
        return cause
    except Exception:
        return None


def _resolve(name):
    """The exception class ``name`` denotes here, without importing
    anything: the script's (``__main__``) or a built-in one for a bare name,
    else a class in a module already loaded."""
    parts = name.split(".")
    if len(parts) == 1:
        main = sys.modules.get("__main__")
        found = getattr(main, name, None) if main is not None else None
        if found is None:
            found = getattr(builtins, name, None)
    else:
        found = None
        for cut in range(len(parts) - 1, 0, -1):
            module = sys.modules.get(".".join(parts[:cut]))
            if module is None:
                continue
            found = module
            for attr in parts[cut:]:
                found = getattr(found, attr, None)
            break
    if isinstance(found, type) and issubclass(found, Exception) and not issubclass(found, RayError):
        return found
    return None


def _dual_class(cause, base=RayTaskError):
    """``base`` (``RayTaskError`` or a subclass) and ``cause`` in one class,
    or None when Python cannot combine them (built-in exceptions with their
    own layout, such as ``OSError``)."""
    if (cause, base) in _dual_classes:
        return _dual_classes[(cause, base)]

    def __init__(self, function, traceback_str):
        # Not the cause's own __init__: its parameters are the task's, and
        # the message is the remote traceback.
        self.function = function
        self.traceback_str = traceback_str
        BaseException.__init__(self, function, traceback_str)

    name = f"{base.__name__}({cause.__name__})"
    try:
        dual = type(name, (base, cause), {"__init__": __init__, "__qualname__": name})
    except TypeError:
        dual = None
    if len(_dual_classes) < _MAX_DUAL_CLASSES:
        _dual_classes[(cause, base)] = dual
    return dual


def task_error(function, traceback_str):
    """The error ``wray.get`` raises for a failed task or method (see the
    module's documentation)."""
    line = _exception_line(traceback_str)
    cause = _resolve(line[0]) if line else None
    base = OutOfMemoryError if _MEMORY_LIMIT in traceback_str else RayTaskError
    dual = _dual_class(cause, base) if cause is not None else None
    error = None
    if dual is not None:
        try:
            error = dual(function, traceback_str)
        except Exception:
            pass
    if error is None:
        error = base(function, traceback_str)
    if cause is not None:
        error.cause = _rebuilt(cause, line[1])
    return error
