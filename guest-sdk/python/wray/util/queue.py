"""Ray's ``ray.util.queue.Queue``: a first-in first-out queue that tasks and
actors share, held by an actor.

Pass the ``Queue`` to tasks and actors (it travels as its actor's handle).
``put`` and ``get`` block as Python's ``queue.Queue`` does, with the same
``block``/``timeout`` arguments and the same ``Full``/``Empty`` exceptions.

How blocking works here: the queue's actor answers every call at once (an
actor runs one call at a time, so a call waiting inside it for an item would
keep out the ``put`` that brings it); a caller that must wait asks again,
sleeping a little longer each time up to ``_MAX_POLL`` (50 ms) — the latency
a waiting consumer may add, against Ray's actor awaiting inside asyncio.
"""

import collections
import queue as _queue
import time

import wray

__all__ = ["Empty", "Full", "Queue"]


class Empty(_queue.Empty):
    """``get`` found nothing (``block=False``, or ``timeout`` passed)."""


class Full(_queue.Full):
    """``put`` found no room (``block=False``, or ``timeout`` passed)."""


# Sleeps between a waiting caller's tries: from _MIN_POLL, doubling to
# _MAX_POLL (seconds).
_MIN_POLL = 0.001
_MAX_POLL = 0.05


class _QueueActor:
    def __init__(self, maxsize):
        self.maxsize = maxsize
        self.items = collections.deque()

    def qsize(self):
        return len(self.items)

    def put(self, item):
        """Whether the item went in (False: the queue is full)."""
        if 0 < self.maxsize <= len(self.items):
            return False
        self.items.append(item)
        return True

    def put_batch(self, items):
        if self.maxsize > 0 and len(self.items) + len(items) > self.maxsize:
            return False
        self.items.extend(items)
        return True

    def get(self):
        """``(True, item)``, or ``(False, None)`` when empty."""
        if not self.items:
            return (False, None)
        return (True, self.items.popleft())

    def get_batch(self, n):
        if n > len(self.items):
            return None
        return [self.items.popleft() for _ in range(n)]


_Actor = wray.remote(num_cpus=0)(_QueueActor)


def _wait(attempt, block, timeout, on_timeout):
    """Calls ``attempt()`` until it returns ``(True, value)``; returns the
    value, or raises ``on_timeout`` when ``block`` is false or ``timeout``
    seconds passed."""
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = _MIN_POLL
    while True:
        done, value = attempt()
        if done:
            return value
        if not block:
            raise on_timeout()
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise on_timeout()
            pause = min(pause, left)
        time.sleep(pause)
        pause = min(pause * 2, _MAX_POLL)


class Queue:
    """A queue of at most ``maxsize`` items (0: no bound) held by an actor;
    ``actor_options`` are that actor's options (``name``, ``lifetime``,
    resources...)."""

    def __init__(self, maxsize=0, actor_options=None):
        if not isinstance(maxsize, int) or maxsize < 0:
            raise ValueError("maxsize must be a non-negative int")
        self.maxsize = maxsize
        self.actor = _Actor.options(**(actor_options or {})).remote(maxsize)

    def __len__(self):
        return self.size()

    def size(self):
        """Items in the queue now."""
        return wray.get(self.actor.qsize.remote())

    qsize = size

    def empty(self):
        return self.size() == 0

    def full(self):
        return self.maxsize > 0 and self.size() >= self.maxsize

    def put(self, item, block=True, timeout=None):
        """Adds ``item``, waiting for room if ``block`` (up to ``timeout``
        seconds); ``Full`` when there is none."""
        _wait(lambda: (wray.get(self.actor.put.remote(item)), None), block, timeout, Full)

    def put_nowait(self, item):
        self.put(item, block=False)

    def put_nowait_batch(self, items):
        """Adds every item of ``items`` at once, or none (``Full``)."""
        items = list(items)
        if not wray.get(self.actor.put_batch.remote(items)):
            raise Full(f"cannot add {len(items)} items to a queue of at most {self.maxsize}")

    def get(self, block=True, timeout=None):
        """Takes the oldest item, waiting for one if ``block`` (up to
        ``timeout`` seconds); ``Empty`` when there is none."""
        return _wait(lambda: wray.get(self.actor.get.remote()), block, timeout, Empty)

    def get_nowait(self):
        return self.get(block=False)

    def get_nowait_batch(self, num_items):
        """Takes the ``num_items`` oldest items at once, or none (``Empty``)."""
        if not isinstance(num_items, int) or num_items < 0:
            raise ValueError("num_items must be a non-negative int")
        batch = wray.get(self.actor.get_batch.remote(num_items))
        if batch is None:
            raise Empty(f"the queue holds fewer than {num_items} items")
        return batch

    def shutdown(self, force=False, grace_period_s=5):
        """Ends the queue's actor."""
        if self.actor is not None:
            wray.kill(self.actor)
        self.actor = None
