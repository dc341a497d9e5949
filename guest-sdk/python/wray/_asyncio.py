"""``async def`` in Python jobs: an event loop that works in a component.

asyncio's own loop cannot start under WASI: it opens a socket pair to wake
itself from other threads, and a component has neither sockets nor threads.
The loop here is asyncio's ``BaseEventLoop`` with a "selector" that has no
files to watch: waiting for the next timer is sleeping until it is due. That
is all a job's coroutines can wait for — timers, other coroutines, futures
they settle themselves, and object refs (``await ref`` is a ``wray.get``) —
so ``asyncio.sleep``, ``gather``, ``wait_for``, tasks and queues work.

An ``async def`` actor method or remote function runs to completion when it
is called (``run``), on the instance's loop: as with every call into a wray
instance, one call at a time. Ray runs an async actor's calls interleaved on
one loop; here a coroutine that waits for something only a later call would
give (an event another call sets) cannot finish, and fails saying so rather
than hang.

``install`` (at build time, when the script uses ``async``/``await`` or
imports asyncio) makes this the loop ``asyncio.run`` and
``asyncio.new_event_loop`` create.
"""

import asyncio
import time
import warnings


class _Timers:
    """The selector of a loop with nothing to select on."""

    def select(self, timeout=None):
        if timeout is None:
            raise RuntimeError(
                "the coroutine waits for something no timer or coroutine of this call will give "
                "(wray runs one call of an instance at a time: another call cannot set it)"
            )
        if timeout > 0:
            time.sleep(timeout)
        return []

    def get_map(self):
        return {}

    def close(self):
        pass


class Loop(asyncio.BaseEventLoop):
    """asyncio's event loop for a component (see the module's documentation)."""

    def __init__(self):
        super().__init__()
        self._selector = _Timers()

    def _process_events(self, event_list):
        pass

    def _write_to_self(self):
        # Nobody to wake: the loop's own thread is the only one.
        pass


# The instance's loop, made on first use and kept, as a Ray actor keeps its
# event loop between calls.
_loop = None


def run(coroutine):
    """Runs ``coroutine`` to completion on the instance's loop."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = Loop()
    return _loop.run_until_complete(coroutine)


def install():
    """Makes :class:`Loop` the loop asyncio creates."""
    with warnings.catch_warnings():
        # The policy API is deprecated from Python 3.14 on, and still what
        # asyncio.run consults for a loop.
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.get_event_loop_policy()._loop_factory = Loop
