"""Ray's ``ray.util.ActorPool``: work spread over a fixed set of actors.

``fn(actor, value)`` makes one call (it returns the call's ``ObjectRef``);
the pool gives each value to an idle actor, queues values while every actor
is busy, and hands results back in submission order (``get_next``, ``map``)
or as they finish (``get_next_unordered``, ``map_unordered``).
"""

import wray


class ActorPool:
    """A pool of ``actors`` (handles of one or more actor classes)."""

    def __init__(self, actors):
        self._idle = list(actors)
        # In flight: ref -> (submission index, actor), and index -> ref.
        self._in_flight = {}
        self._by_index = {}
        # Values waiting for an actor, in submission order: (fn, value).
        self._waiting = []
        self._next_index = 0
        self._next_return = 0

    def submit(self, fn, value):
        """Schedules ``fn(actor, value)`` on an idle actor, or queues it
        until one is returned to the pool."""
        if self._idle:
            actor = self._idle.pop()
            ref = fn(actor, value)
            if not isinstance(ref, wray.ObjectRef):
                self._idle.append(actor)
                raise TypeError(f"the function given to ActorPool must return an ObjectRef, not {type(ref).__name__}")
            self._in_flight[ref] = (self._next_index, actor)
            self._by_index[self._next_index] = ref
            self._next_index += 1
        else:
            self._waiting.append((fn, value))

    def has_next(self):
        """Whether a submitted value's result has not been taken yet."""
        return bool(self._in_flight) or bool(self._waiting)

    def get_next(self, timeout=None, ignore_if_timedout=False):
        """The next result in submission order (blocking up to ``timeout``
        seconds: ``TimeoutError`` then; with ``ignore_if_timedout`` that
        result is skipped for good)."""
        if not self.has_next():
            raise StopIteration("No more results to get")
        if self._next_return >= self._next_index:
            raise ValueError("get_next() cannot follow get_next_unordered() while results are pending")
        ref = self._by_index[self._next_return]
        if timeout is not None:
            ready, _ = wray.wait([ref], num_returns=1, timeout=timeout)
            if not ready:
                if ignore_if_timedout:
                    self._take(ref)
                raise TimeoutError("Timed out waiting for result")
        self._take(ref)
        return wray.get(ref)

    def get_next_unordered(self, timeout=None, ignore_if_timedout=False):
        """Whichever result is ready first (as ``get_next`` for the
        timeout)."""
        if not self.has_next():
            raise StopIteration("No more results to get")
        refs = list(self._in_flight)
        ready, _ = wray.wait(refs, num_returns=1, timeout=timeout)
        if not ready:
            if ignore_if_timedout:
                self._take(refs[0])
            raise TimeoutError("Timed out waiting for result")
        ref = ready[0]
        self._take(ref)
        return wray.get(ref)

    def map(self, fn, values):
        """Results of ``fn(actor, v)`` for each value, in order (an
        iterator; every value is submitted at once)."""
        return self._submit_all(fn, values, self.get_next)

    def map_unordered(self, fn, values):
        """As ``map``, results in the order they finish."""
        return self._submit_all(fn, values, self.get_next_unordered)

    def _submit_all(self, fn, values, take):
        for v in values:
            self.submit(fn, v)

        def results():
            while self.has_next():
                yield take()

        return results()

    def has_free(self):
        """Whether an actor is idle and no value waits for one."""
        return bool(self._idle) and not self._waiting

    def pop_idle(self):
        """Takes an idle actor out of the pool (``None`` if none is)."""
        return self._idle.pop() if self.has_free() else None

    def push(self, actor):
        """Adds ``actor`` to the pool (it takes the next waiting value)."""
        if actor in self._idle or any(a == actor for _, a in self._in_flight.values()):
            raise ValueError("Actor already belongs to current ActorPool")
        self._return(actor)

    def _take(self, ref):
        """Forgets ``ref`` and returns its actor to the pool."""
        index, actor = self._in_flight.pop(ref)
        del self._by_index[index]
        if index == self._next_return:
            self._next_return += 1
            while self._next_return < self._next_index and self._next_return not in self._by_index:
                self._next_return += 1
        self._return(actor)

    def _return(self, actor):
        self._idle.append(actor)
        if self._waiting:
            fn, value = self._waiting.pop(0)
            self.submit(fn, value)
