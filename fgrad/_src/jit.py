"""``fg.jit``: trace once per abstract signature, then run the staged program.

The cache key is the pytree structure of the positional and keyword arguments, each
leaf's shape, dtype and weak-typedness, and the static arguments (by position or by
name) by value. Under another transform the cached jaxpr is evaluated through
``bind``, so ``grad(jit(f))`` composes. Donated arguments (``donate_argnums``) mark
their leaves on the traced jaxpr, for the interpreter to reuse their memory.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections import OrderedDict

import numpy as np

from fgrad._src import config, core, lru
from fgrad._src.api import _check_leaves, flatten_fun
from fgrad._src.backend import execute
from fgrad._src.core import Tracer, get_aval
from fgrad._src.errors import check_callable
from fgrad._src.interpreters.partial_eval import trace_to_jaxpr
from fgrad._src.tree import tree_flatten, tree_unflatten

logger = logging.getLogger("fgrad")
_flags = config.flags
_trace_state = core._state  # the thread-local trace stack


def _static_key(value, index):
    try:
        hash(value)
    except TypeError:
        raise ValueError(
            f"jit: static argument {index!r} has unhashable type {type(value).__name__}; "
            "static arguments are cached by value, so pass a hashable one (a tuple "
            "instead of a list, for example), or make it a regular traced argument."
        ) from None
    return (type(value), _value_key(value))


def _value_key(value):
    """What a static value is keyed by: itself, except that floats are keyed by their bits
    (0.0 == -0.0 would reuse the other's program, and a nan would never be found again)
    and a tuple's items by type and key (``(1,)`` == ``(1.0,)`` == ``(True,)``)."""
    if isinstance(value, (float, np.floating)):
        return np.asarray(value).tobytes()
    if type(value) is tuple:
        return tuple((type(item), _value_key(item)) for item in value)
    return value


def _key_value(kind, key):
    """The static value a ``(type, _value_key)`` pair was made from, for messages."""
    if isinstance(key, bytes):  # a float, keyed by its bits
        dtype = kind if issubclass(kind, np.floating) else np.float64
        return kind(np.frombuffer(key, dtype)[0])
    if kind is tuple:
        return tuple(_key_value(*item) for item in key)
    return key


def _describe_miss(key, cache):
    if not cache:
        return "first call"
    tree, avals, statics = key
    for old_tree, old_avals, old_statics in cache:
        if old_tree != tree:
            continue
        if old_statics != statics:
            shown = ", ".join(repr(_key_value(*key)) for key in statics)
            return f"static arguments changed to ({shown})"
        diffs = [
            f"argument leaf {i}: {a.str_short()} -> {b.str_short()}"
            for i, (a, b) in enumerate(zip(old_avals, avals))
            if a != b
        ]
        if diffs:
            return "new shapes/dtypes (" + "; ".join(diffs) + ")"
    return f"new argument structure {tree}"


class JittedFunction:
    """The caches behind ``fg.jit``'s callable, and every path but the hottest."""

    def __init__(self, fun, static_argnums, static_argnames=(), donate_argnums=()):
        self.fun = fun
        self.static_argnums = static_argnums
        self.static_argnames = static_argnames
        self.donate_argnums = donate_argnums
        self._cache: OrderedDict = OrderedDict()
        self._fast: dict = {}
        # (shape, dtype, runner) of the last one-array call with one array out, if any
        self._last = None

    def _signature(self, args, kwargs=None):
        statics = tuple(
            _static_key(args[i], i) for i in self.static_argnums if i < len(args)
        )
        dynamic = tuple(a for i, a in enumerate(args) if i not in self.static_argnums)
        if kwargs:
            statics += tuple((name, _static_key(kwargs[name], name))
                             for name in sorted(kwargs) if name in self.static_argnames)
            # NB: keyword arguments are one more pytree node: a dict after the positionals.
            dynamic = (dynamic, {name: v for name, v in kwargs.items()
                                 if name not in self.static_argnames})
        leaves, tree = tree_flatten(dynamic)
        _check_leaves(leaves, "jit arguments")
        _check_python_ints(leaves)
        avals = tuple(get_aval(x) for x in leaves)
        return (tree, avals, statics), leaves

    def lower(self, *args, **kwargs):
        """The ``ClosedJaxpr`` (and output tree) for these arguments, traced at most once."""
        key, leaves = self._signature(args, kwargs)
        entry = self._cache.get(key)
        if entry is not None:
            lru.touch(self._cache, key)
            return entry, leaves
        if config.flags.log_compiles:
            logger.warning(
                "fgrad.jit: tracing %s (%s)",
                getattr(self.fun, "__name__", "fun"),
                _describe_miss(key, self._cache),
            )

        def full_args(dyn):
            it = iter(dyn)
            return [args[i] if i in self.static_argnums else next(it) for i in range(len(args))]

        if kwargs:
            def f_dynamic(dyn, dyn_kwargs):
                statics = {k: v for k, v in kwargs.items() if k in self.static_argnames}
                return self.fun(*full_args(dyn), **dyn_kwargs, **statics)
        else:
            def f_dynamic(*dyn):
                return self.fun(*full_args(dyn))

        tree = key[0]
        f_flat, store = flatten_fun(f_dynamic, tree)
        closed = trace_to_jaxpr(f_flat, list(key[1]))
        if self.donate_argnums:
            closed.donated = self._donated_leaves(args, kwargs)
        entry = (closed, store["tree"])
        # NB: a trace that closed over a value traced by an enclosing transform (a global
        # set under vmap or grad) holds that tracer as a constant: valid for this call
        # only, so it is not cached.
        if not any(isinstance(c, Tracer) for c in closed.consts):
            self._cache[key] = entry
            lru.evict_oldest(self._cache, config.flags.jit_cache_size)
        return entry, leaves

    def _donated_leaves(self, args, kwargs):
        """The flat input positions of the leaves of the donated positional arguments."""
        donated, start = [], 0
        for i, a in enumerate(args):
            if i in self.static_argnums:
                continue
            count = len(tree_flatten(a)[0])
            if i in self.donate_argnums:
                donated.extend(range(start, start + count))
            start += count
        return frozenset(donated)

    def __call__(self, *args):
        # NB: the hot path is written out flat. For plain NumPy arguments with no static
        # ones and no transform active, shapes and dtypes imply the full signature.
        fast_key = None
        # NB: ``len(_trace_state.stack) == 1`` is ``core.current_level() == 0``, inlined.
        if not self.static_argnums and len(_trace_state.stack) == 1:
            x = args[0] if len(args) == 1 else None
            if type(x) is np.ndarray:
                fast_key = (x.shape, x.dtype)
            else:
                fast_key = _fast_key(args)
        entry = self._fast.get(fast_key) if fast_key is not None else None
        if entry is None:
            return self._call_slow(args, fast_key)
        runner, closed, out_tree, single = entry
        if runner is None or not _flags.interpreter:
            outs = execute.run_closed_jaxpr(closed, list(args))
            return outs[0] if single else tree_unflatten(out_tree, outs)
        if single and len(args) == 1 and type(args[0]) is np.ndarray:
            self._last = (args[0].shape, args[0].dtype, runner)
        outs = runner(args)
        return outs[0] if single else tree_unflatten(out_tree, outs)

    def call_with_keywords(self, args, kwargs):
        """A call with keyword arguments: always the keyed (slower) path."""
        return self._call_slow(args, None, kwargs)

    def _call_slow(self, args, fast_key, kwargs=None):
        """Trace (at most once per signature) and run; remember hot-path signatures."""
        (closed, out_tree), leaves = self.lower(*args, **(kwargs or {}))
        if not _is_top_level(leaves):
            return _unflatten(out_tree, core.eval_jaxpr(closed.jaxpr, closed.consts, leaves))
        outs = execute.run_closed_jaxpr(closed, leaves)
        if fast_key is not None:
            if len(self._fast) >= config.flags.jit_cache_size:
                self._fast.clear()
            self._fast[fast_key] = (execute.fast_runner(closed), closed, out_tree,
                                    out_tree.node_type is None)
        return _unflatten(out_tree, outs)


_PYTHON_SCALARS = (bool, int, float)
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1


def _check_python_ints(leaves):
    """A traced Python int is an int64: one outside its range is an error, named."""
    for i, x in enumerate(leaves):
        if isinstance(x, int) and not isinstance(x, bool) and not (
                _INT64_MIN <= x <= _INT64_MAX):
            raise OverflowError(
                f"jit: the Python int {x} (flat argument {i}) does not fit in int64, the dtype "
                "of a traced Python int; pass it as a float or a NumPy array, or make the "
                "argument static (static_argnums)")
_WEAK = object()  # stands for a shape in a hot-path key: a weakly typed Python scalar


def _fast_key(args):
    """The hot-path key of the arguments (see ``JittedFunction.__call__``), or None unless
    every one is a NumPy array or scalar, or a Python bool, int or float (weakly typed:
    its type is its whole signature, as ``core.get_aval`` says).

    >>> _fast_key((np.zeros((2, 3)), 0.5))[:2]
    ((2, 3), dtype('float64'))
    >>> _fast_key((np.zeros(2), [1.0])) is None
    True
    """
    key = []
    for x in args:
        if type(x) is np.ndarray or isinstance(x, np.generic):
            key.append(x.shape)
            key.append(x.dtype)
        elif type(x) in _PYTHON_SCALARS:
            if type(x) is int and not _INT64_MIN <= x <= _INT64_MAX:
                return None  # the keyed path names the argument (_check_python_ints)
            # NB: a sentinel, not a shape: dtype('float64') == float is True in NumPy,
            # so the type alone could equal an array's dtype.
            key.append(_WEAK)
            key.append(type(x))
        else:
            return None
    return tuple(key)


def _unflatten(out_tree, outs):
    return outs[0] if out_tree.node_type is None else tree_unflatten(out_tree, outs)


def _is_top_level(leaves) -> bool:
    return core.current_level() == 0 and not any(isinstance(x, Tracer) for x in leaves)


def _argnums(value, what):
    if isinstance(value, int):
        value = (value,)
    try:
        value = tuple(value)
    except TypeError:
        raise TypeError(f"jit: {what} must be an int or a tuple of ints, got "
                        f"{type(value).__name__}") from None
    for v in value:
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError(f"jit: {what} must be ints (positions of arguments), got {v!r}")
    return value


def _count_from_the_end(nums, positional, fun, what):
    """Negative positions counted from the end of ``fun``'s positional parameters, as
    JAX does (``positional`` is None when the signature cannot tell them)."""
    if all(n >= 0 for n in nums):
        return nums
    if positional is None:
        raise ValueError(
            f"jit: {what}={nums} counts from the end, but the positional parameters of "
            f"{getattr(fun, '__name__', 'the function')} are not known (it takes *args or "
            "has no signature); give non-negative positions")
    resolved = tuple(n + len(positional) if n < 0 else n for n in nums)
    if min(resolved) < 0:
        raise ValueError(f"jit: {what}={nums} is out of range for "
                         f"{len(positional)} positional parameter(s)")
    return resolved


def _static_both_ways(fun, static_argnums, static_argnames, donate_argnums):
    """As JAX does: a static parameter is static whether passed by position or by name,
    when ``fun``'s signature tells both; negative positions count from the end of its
    positional parameters, and positions beyond them are an error. Returns the static
    positions and names and the donated positions."""
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):  # a builtin or a callable without a signature
        params = None
    positional = [p.name for p in params or ()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    known = params is not None and not any(p.kind == p.VAR_POSITIONAL for p in params)
    static_argnums = _count_from_the_end(static_argnums, positional if known else None, fun,
                                         "static_argnums")
    donate_argnums = _count_from_the_end(donate_argnums, positional if known else None, fun,
                                         "donate_argnums")
    if known:
        for what, nums in (("static_argnums", static_argnums),
                           ("donate_argnums", donate_argnums)):
            if nums and max(nums) >= len(positional):
                raise ValueError(
                    f"jit: {what}={nums} names argument {max(nums)}, but "
                    f"{getattr(fun, '__name__', 'the function')} takes "
                    f"{len(positional)} positional argument(s); positions count from 0")
    takes_any_keyword = params is None or any(p.kind == p.VAR_KEYWORD for p in params)
    parameter_names = {p.name for p in params or ()}
    unknown = [n for n in static_argnames if n not in parameter_names]
    if unknown and not takes_any_keyword:
        raise ValueError(f"jit: static_argnames {unknown} are not parameters of "
                         f"{getattr(fun, '__name__', 'the function')}")
    nums, names = list(static_argnums), list(static_argnames)
    for i in static_argnums:
        if i < len(positional) and positional[i] not in names:
            names.append(positional[i])
    for name in static_argnames:
        if name in positional and positional.index(name) not in nums:
            nums.append(positional.index(name))
    return tuple(nums), tuple(names), donate_argnums


def jit(fun, static_argnums=(), static_argnames=(), donate_argnums=()):
    """Compile ``fun``: trace it once per abstract signature and run the staged program.

    Arguments at ``static_argnums`` (positions) or ``static_argnames`` (keywords) are
    hashed by value instead of traced. Other keyword arguments are traced like the
    positional ones. ``donate_argnums`` says the caller no longer needs those
    arguments: the program may write a result of the same shape and dtype into a
    donated array instead of a new one (``params = step(params, ...)`` then updates
    the parameters in place), so after the call a donated array holds undefined values.
    NumPy arrays the function closes over are captured (copied) when it is traced, as in
    JAX: pass values that change between calls as arguments.

    >>> import fgrad.numpy as fnp
    >>> f = jit(lambda x: fnp.sum(x * 2.0))
    >>> float(f(np.ones(3)))
    6.0
    >>> step = jit(lambda p, g, lr=0.1: p - lr * g, donate_argnums=0)
    >>> p = step(np.ones(3), np.ones(3), lr=0.5)
    >>> p.tolist()
    [0.5, 0.5, 0.5]
    """
    check_callable(fun, "jit")
    static_argnums = _argnums(static_argnums, "static_argnums")
    donate_argnums = _argnums(donate_argnums, "donate_argnums")
    if isinstance(static_argnames, str):
        static_argnames = (static_argnames,)
    if not isinstance(static_argnames, (tuple, list)) or not all(
            isinstance(name, str) for name in static_argnames):
        raise TypeError(f"jit: static_argnames must be a str or a tuple of str (parameter "
                        f"names), got {static_argnames!r}")
    static_argnums, static_argnames, donate_argnums = _static_both_ways(
        fun, static_argnums, tuple(static_argnames), donate_argnums)
    both = set(static_argnums) & set(donate_argnums)
    if both:
        raise ValueError(f"jit: argument {min(both)} is both static and donated; a static "
                         "argument is hashed by value, not passed to the program, so only "
                         "traced arguments can be donated")
    state = JittedFunction(fun, static_argnums, static_argnames, donate_argnums)

    # NB: a plain function is cheaper to call than an object. It checks the last
    # one-array signature (``state._last``) without building a key; everything else
    # goes through ``JittedFunction.__call__``.
    @functools.wraps(fun)
    def jitted(*args, **kwargs):
        if kwargs:
            return state.call_with_keywords(args, kwargs)
        last = state._last
        if last is not None and len(args) == 1 and _flags.interpreter:
            x = args[0]
            if (type(x) is np.ndarray and x.shape == last[0] and x.dtype is last[1]
                    and len(_trace_state.stack) == 1):
                return last[2](args)[0]
        return state(*args)

    jitted.lower = state.lower
    jitted._state = state
    return jitted
