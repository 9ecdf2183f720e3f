"""Least-recently-used bookkeeping for the OrderedDict caches of ``jit`` and ``grad``,
safe when threads share a cache: each step is one atomic dict operation, and an entry
another thread evicted in between is no error."""

from __future__ import annotations


def touch(lru, key):
    """Mark ``key`` of the OrderedDict ``lru`` as just used.

    NB: another thread may have evicted it since it was read: the caller keeps the
    value it already has, so that is no error.

    >>> from collections import OrderedDict
    >>> cache = OrderedDict(a=1, b=2); touch(cache, "a"); touch(cache, "gone"); list(cache)
    ['b', 'a']
    """
    try:
        lru.move_to_end(key)
    except KeyError:
        pass


def evict_oldest(lru, size):
    """Drop the least recently used entries of ``lru`` beyond ``size`` (threads may evict
    concurrently: an already empty cache ends the loop).

    >>> from collections import OrderedDict
    >>> cache = OrderedDict(a=1, b=2, c=3); evict_oldest(cache, 1); list(cache)
    ['c']
    """
    while len(lru) > size:
        try:
            lru.popitem(last=False)
        except KeyError:
            return
