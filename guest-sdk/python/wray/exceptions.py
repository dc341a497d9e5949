"""The errors a wray job sees, under Ray's names (``ray.exceptions``).

Every failure the host reports (the WIT ``error`` variant) becomes one of
these at the call that observed it: ``wray.get`` of a failed task raises
``RayTaskError`` carrying the remote traceback, a dead actor raises
``RayActorError`` (also reachable as ``ActorDiedError``), and so on.
"""


class RayError(Exception):
    """The base of every error wray raises for a remote failure."""


class RayTaskError(RayError):
    """A task or actor method raised, trapped or ran past a limit.

    ``function`` names it (``f`` or ``Class.method``); ``traceback_str`` is
    the remote traceback as the task printed it (or the host's reason when
    the task could not report one: a trap, the memory or time limit).
    """

    def __init__(self, function, traceback_str):
        self.function = function
        self.traceback_str = traceback_str
        super().__init__(function, traceback_str)

    def __str__(self):
        return f"{self.function} failed:\n{self.traceback_str}"


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
