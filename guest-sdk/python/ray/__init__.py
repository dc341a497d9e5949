"""``import ray`` in a wray job: the ``wray`` package under Ray's name, so
that a Ray script runs without changing its imports.

``ray`` *is* ``wray`` (the same module object), and so are its submodules
(``ray.util``, ``ray.util.queue``, ``ray.exceptions``, ``ray.actor``, ...):
each is registered under both names here, so ``from ray.util.queue import
Queue`` gives wray's class itself, not a second copy of its module. What
wray does not have in Python (``ray.data``, ``ray.tune``, ...) is a
``ModuleNotFoundError`` naming it.
"""

import sys

import wray
import wray.actor
import wray.exceptions
import wray.serve
import wray.util
import wray.util.actor_pool
import wray.util.multiprocessing
import wray.util.placement_group
import wray.util.queue
import wray.util.scheduling_strategies


def _alias():
    for name, module in list(sys.modules.items()):
        if name == "wray" or (name.startswith("wray.") and not name.split(".")[-1].startswith("_")):
            sys.modules["ray" + name[len("wray") :]] = module


_alias()
