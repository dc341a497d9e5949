"""Ray's ``ray.actor``: the actor classes and handles, and ``exit_actor``."""

import time

from componentize_py_types import Err as _Err
from wit_world.imports import actors as _actors
from wit_world.imports import cluster as _cluster

from . import ActorClass, ActorHandle, exceptions

__all__ = ["ActorClass", "ActorHandle", "exit_actor"]


def exit_actor():
    """Ends the actor whose method calls it, for good (no restart): the call
    fails, as do the calls queued behind it, with ``RayActorError``, as in
    Ray. Outside an actor's method it raises ``TypeError``."""
    me = _cluster.context().actor_id
    if me is None:
        raise TypeError("exit_actor() must be called from one of an actor's methods")
    try:
        _actors.kill(me, True)
    except _Err as err:
        raise exceptions.RayActorError(str(err.value)) from None
    # The host stops this call within one tick of its clock; nothing of the
    # method runs after this line.
    while True:
        time.sleep(1)
