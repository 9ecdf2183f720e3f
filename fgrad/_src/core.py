"""The core of fgrad: abstract values, the IR, primitives, and the trace stack.

``Primitive.bind`` hands each operation to the innermost active trace; the
eager ``EvalTrace`` at the bottom runs the primitive's implementation. The IR
(``Var``/``Literal``/``JaxprEqn``/``Jaxpr``) is what transforms rewrite.
"""

from __future__ import annotations

import math
import sys
import threading
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np

from fgrad._src import config, dtypes
from fgrad._src.errors import (
    ConcretizationError,
    TracerArrayConversionError,
    UnexpectedTracerError,
    user_frame_summary,
)

# --------------------------------------------------------------------------- avals


class ShapedArray:
    """The abstract value of an array: shape, dtype and weak-typedness.

    >>> ShapedArray((3,), np.dtype("float32"))
    ShapedArray(f32[3])
    """

    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape, dtype, weak_type=False):
        self.shape = tuple(map(int, shape))
        self.dtype = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)
        self.weak_type = bool(weak_type)

    @classmethod
    def trusted(cls, shape: tuple, dtype: np.dtype, weak_type: bool = False) -> ShapedArray:
        """Construct without normalising (``shape`` a tuple of ints, ``dtype`` a np.dtype)."""
        aval = object.__new__(cls)
        aval.shape = shape
        aval.dtype = dtype
        aval.weak_type = weak_type
        return aval

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))

    def str_short(self) -> str:
        dims = ",".join(str(d) for d in self.shape)
        return f"{dtypes.short_name(self.dtype)}[{dims}]"

    def strip_weak_type(self) -> ShapedArray:
        return ShapedArray(self.shape, self.dtype) if self.weak_type else self

    def update(self, shape=None, dtype=None, weak_type=None) -> ShapedArray:
        return ShapedArray(
            self.shape if shape is None else shape,
            self.dtype if dtype is None else dtype,
            self.weak_type if weak_type is None else weak_type,
        )

    def __eq__(self, other):
        return (
            type(other) is ShapedArray
            and self.shape == other.shape
            and self.dtype == other.dtype
            and self.weak_type == other.weak_type
        )

    def __hash__(self):
        return hash((self.shape, self.dtype, self.weak_type))

    def __repr__(self):
        weak = ", weak_type=True" if self.weak_type else ""
        return f"ShapedArray({self.str_short()}{weak})"


def raise_to_shaped(aval: ShapedArray) -> ShapedArray:
    return aval


_CANONICAL: dict = {}  # a supported array dtype -> the dtype of its aval


def get_aval(x) -> ShapedArray:
    """The abstract value of an array, a Python scalar or a tracer.

    >>> get_aval(1.0)
    ShapedArray(f64[], weak_type=True)
    """
    if isinstance(x, Tracer):
        return x.aval
    if isinstance(x, (np.ndarray, np.generic)):
        if x.__class__ is not np.ndarray and _is_masked(x):
            raise _masked_array_error()
        dtype = _CANONICAL.get(x.dtype)
        if dtype is None:
            dtype = _CANONICAL[x.dtype] = dtypes.canonical_array_dtype(x.dtype)
        return ShapedArray.trusted(x.shape, dtype)
    if isinstance(x, (bool, int, float)):
        return ShapedArray((), dtypes.python_scalar_dtype(x), weak_type=True)
    raise TypeError(
        f"fgrad cannot use a value of type {type(x).__name__} as an array; "
        "pass NumPy arrays, Python scalars, or pytrees (tuples, lists, dicts) of them."
    )


def is_array_like(x) -> bool:
    if x.__class__ is np.ndarray:
        return True
    return isinstance(x, (Tracer, np.generic, bool, int, float)) or (
        isinstance(x, np.ndarray) and not _is_masked(x))


def _is_masked(x) -> bool:
    """Whether ``x`` is a NumPy masked array (none exists unless ``numpy.ma`` was
    imported, so fgrad does not import it)."""
    ma = sys.modules.get("numpy.ma")
    return ma is not None and isinstance(x, ma.MaskedArray)


def _masked_array_error() -> ValueError:
    # NB: as JAX: computing with the data under a mask would silently use masked values.
    return ValueError(
        "fgrad does not support NumPy masked arrays: their mask would be ignored and the "
        "masked values used. Pass arr.filled(fill_value) for the values to compute with, "
        "or the data and the mask as two arrays (fnp.where(mask, ...)).")


def snapshot(value):
    """``value`` as a constant of a traced or recorded program: a NumPy array whose values
    can still change is copied (as a plain ndarray), so writing into it later (``buf[i] =
    1`` between two uses, or after the call) cannot change what the program computes;
    anything else is returned as is.

    >>> a = np.zeros(2); b = snapshot(a); a[0] = 1.0; b
    array([0., 0.])
    """
    if mutable_array(value):
        return np.array(value)
    return value


def mutable_array(value) -> bool:
    """Whether ``value`` is a NumPy array whose values can still be written: a writeable
    one, a read-only view of writeable memory (``np.broadcast_to(buf, ...)``), or an
    ndarray subclass (which may share memory in its own ways). A read-only array that
    owns its memory cannot change.

    >>> x = np.zeros(3); mutable_array(np.broadcast_to(x, (2, 3)))
    True
    """
    if not isinstance(value, np.ndarray):
        return False
    if type(value) is not np.ndarray or value.flags.writeable:
        return True
    base = value.base
    while isinstance(base, np.ndarray):
        if base.flags.writeable:
            return True
        base = base.base
    return base is not None  # NB: memory of another object (a buffer) may change


def unchanged_since(copy, value) -> bool:
    """Whether ``value`` still holds what ``snapshot`` took of it as ``copy``."""
    if copy is value:
        return True
    return copy.shape == value.shape and copy.dtype == value.dtype and np.array_equal(
        copy, value, equal_nan=copy.dtype.kind in "fc")


def to_numpy(x) -> np.ndarray | np.generic:
    """Canonicalise a concrete value: Python scalars become NumPy scalars of their dtype."""
    if isinstance(x, (np.ndarray, np.generic)):
        return x
    if isinstance(x, (bool, int, float)):
        return np.asarray(x, dtypes.python_scalar_dtype(x))
    raise TypeError(f"expected an array, got {type(x).__name__}")


# --------------------------------------------------------------------------- the IR


class Var:
    """A variable of a jaxpr; its name is assigned when the jaxpr is printed."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"Var({self.aval.str_short()})"


class Literal:
    """A scalar constant written inline in a jaxpr."""

    __slots__ = ("val", "aval")

    def __init__(self, val):
        self.val = val
        self.aval = get_aval(val)

    def __repr__(self):
        return f"Literal({self.val})"


Atom = Var | Literal


class JaxprEqn(NamedTuple):
    primitive: Primitive
    inputs: list  # of Atom
    params: dict
    out_binders: list  # of Var


class Jaxpr:
    """A typed first-order program: ``{ lambda consts ; ins. let eqns in (outs,) }``.

    >>> import fgrad as fg
    >>> print(fg.make_jaxpr(lambda x: -x)(np.ones(3)))
    { lambda ; a:f64[3]. let
        b:f64[3] = neg a
      in (b,) }
    """

    def __init__(self, constvars, in_binders, eqns, outs):
        self.constvars = list(constvars)
        self.in_binders = list(in_binders)
        self.eqns = list(eqns)
        self.outs = list(outs)

    def __str__(self):
        from fgrad._src.pretty_print import pp_jaxpr

        return pp_jaxpr(self)

    __repr__ = __str__


class ClosedJaxpr:
    """A jaxpr together with the values of its constvars (what ``make_jaxpr`` returns)."""

    # Input positions whose memory the interpreter may reuse for an output of the same
    # shape and dtype (``fg.jit``'s ``donate_argnums`` sets it on the jaxprs it traces).
    donated = frozenset()

    def __init__(self, jaxpr: Jaxpr, consts):
        self.jaxpr = jaxpr
        self.consts = list(consts)

    in_avals = property(lambda self: [v.aval for v in self.jaxpr.in_binders])
    out_avals = property(lambda self: [x.aval for x in self.jaxpr.outs])
    eqns = property(lambda self: self.jaxpr.eqns)

    def __str__(self):
        return str(self.jaxpr)

    __repr__ = __str__


class JaxprTypeError(TypeError):
    """Raised by ``typecheck_jaxpr`` when a jaxpr is malformed."""


def typecheck_jaxpr(jaxpr: Jaxpr):
    """Check that every variable is bound once before use and every type agrees.

    Returns the list of output avals.

    >>> import fgrad as fg
    >>> typecheck_jaxpr(fg.make_jaxpr(lambda x: x + 1.0)(np.ones(2)).jaxpr)
    [ShapedArray(f64[2])]
    """
    env: set = set()

    def bind_var(v):
        if not isinstance(v, Var):
            raise JaxprTypeError(f"binder {v!r} is not a Var")
        if v in env:
            raise JaxprTypeError(f"variable {v!r} is bound twice")
        env.add(v)

    def read_atom(x):
        if isinstance(x, Literal):
            return x.aval
        if x not in env:
            raise JaxprTypeError(f"variable {x!r} is used before it is bound")
        return x.aval

    for v in [*jaxpr.constvars, *jaxpr.in_binders]:
        bind_var(v)
    for eqn in jaxpr.eqns:
        in_avals = [read_atom(x) for x in eqn.inputs]
        try:
            out_avals = abstract_eval(eqn.primitive, in_avals, eqn.params)
        except (TypeError, ValueError) as e:
            operands = ", ".join(a.str_short() for a in in_avals)
            raise JaxprTypeError(
                f"{eqn.primitive.name} cannot be applied to ({operands}): {e}"
            ) from e
        if len(out_avals) != len(eqn.out_binders):
            raise JaxprTypeError(
                f"{eqn.primitive.name} produces {len(out_avals)} outputs "
                f"but binds {len(eqn.out_binders)}"
            )
        for binder, aval in zip(eqn.out_binders, out_avals):
            if not types_match(binder.aval, aval):
                raise JaxprTypeError(
                    f"{eqn.primitive.name} produces {aval.str_short()} "
                    f"but its binder is typed {binder.aval.str_short()}"
                )
            bind_var(binder)
    return [read_atom(x) for x in jaxpr.outs]


def types_match(a: ShapedArray, b: ShapedArray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype


def eval_jaxpr(jaxpr: Jaxpr, consts, args):
    """Evaluate ``jaxpr`` by binding each equation's primitive at the current trace.

    >>> import fgrad as fg
    >>> closed = fg.make_jaxpr(lambda x: x * 2.0)(np.ones(2))
    >>> eval_jaxpr(closed.jaxpr, closed.consts, [np.arange(2.0)])
    [array([0., 2.])]
    """
    env: dict = {}

    def read(x):
        return x.val if isinstance(x, Literal) else env[x]

    for v, val in zip(jaxpr.constvars, consts):
        env[v] = val
    if len(args) != len(jaxpr.in_binders):
        raise TypeError(f"jaxpr takes {len(jaxpr.in_binders)} arguments, got {len(args)}")
    for v, val in zip(jaxpr.in_binders, args):
        env[v] = val
    for eqn in jaxpr.eqns:
        outs = eqn.primitive.bind_list(*[read(x) for x in eqn.inputs], **eqn.params)
        for v, val in zip(eqn.out_binders, outs):
            env[v] = val
    return [read(x) for x in jaxpr.outs]


# --------------------------------------------------------------------------- primitives

impl_rules: dict = {}
abstract_eval_rules: dict = {}


class Primitive:
    """A primitive operation; ``bind`` dispatches it to the innermost trace.

    >>> from fgrad._src.lax.elementwise import add_p
    >>> add_p.bind(np.float64(1.0), np.float64(2.0))
    np.float64(3.0)
    """

    multiple_results = False
    # NB: staging records an equation of this primitive on a literal operand once per
    # (literal, params) and reuses its outputs: set for broadcast_in_dim, whose every
    # scalar operand (``x * 0.5``, ``1 - y**2`` in rules) would otherwise stage again.
    stage_once_per_literal = False
    # NB: set for stop_gradient: eager recording knows its output carries no gradient.
    stops_gradient = False

    def __init__(self, name: str, multiple_results: bool = False):
        self.name = name
        self.multiple_results = multiple_results

    def bind(self, *args, **params):
        # NB: the body of bind_list, inlined: this is the hottest call of eager recording.
        trace = find_top_trace(args)
        if type(trace) is EvalTrace:
            # NB: at the bottom of the stack no argument is a tracer and nothing is boxed
            # (EvalTrace.pure is the identity): check the values and run the impl.
            for arg in args:
                if not is_array_like(arg):
                    get_aval(arg)  # raises a clear TypeError
            outs = trace.process_primitive(self, args, params)
            return outs if self.multiple_results else outs[0]
        main = trace.main
        tracers = [
            arg if isinstance(arg, Tracer) and arg._trace.main is main else full_raise(trace, arg)
            for arg in args
        ]
        outs = trace.process_primitive(self, tracers, params)
        return outs if self.multiple_results else outs[0]

    def bind_list(self, *args, **params):
        """Like ``bind`` but always returns a list of outputs."""
        trace = find_top_trace(args)
        main = trace.main
        # NB: the common case — an argument already boxed by this trace — skips full_raise.
        tracers = [
            arg if isinstance(arg, Tracer) and arg._trace.main is main else full_raise(trace, arg)
            for arg in args
        ]
        return trace.process_primitive(self, tracers, params)

    def __repr__(self):
        return self.name


def abstract_eval(prim: Primitive, in_avals, params) -> list:
    """Output avals of ``prim`` applied to ``in_avals``; always a list."""
    rule = abstract_eval_rules.get(prim)
    if rule is None:
        raise NotImplementedError(f"primitive {prim.name} has no abstract evaluation rule")
    outs = rule(*in_avals, **params)
    return list(outs) if prim.multiple_results else [outs]


def apply_impl(prim: Primitive, vals, params) -> list:
    rule = impl_rules.get(prim)
    if rule is None:
        raise NotImplementedError(f"primitive {prim.name} has no implementation")
    outs = rule(*vals, **params)
    return list(outs) if prim.multiple_results else [outs]


# --------------------------------------------------------------------------- traces


class MainTrace(NamedTuple):
    level: int
    trace_type: type
    global_data: Any


class new_main:  # noqa: N801  (used like the function it replaced: `with new_main(...)`)
    """Push a new main trace of ``trace_type`` for the duration of the block.

    A class rather than a ``@contextmanager`` generator: it is entered on every
    un-jitted ``grad`` call, and a plain ``__enter__``/``__exit__`` pair is several
    times cheaper.

    >>> with new_main(EvalTrace) as main:
    ...     main.level == current_level()
    True
    """

    __slots__ = ("_main",)

    def __init__(self, trace_type: type, global_data=None):
        self._main = (trace_type, global_data)

    def __enter__(self) -> MainTrace:
        # NB: the level is taken at entry, as the generator version did.
        stack = _state.stack
        # NB: tuple.__new__ skips the NamedTuple's Python-level __new__ (same object).
        main = tuple.__new__(MainTrace, (len(stack), *self._main))
        stack.append(main)
        return main

    def __exit__(self, *exc_info):
        _state.stack.pop()
        return False


@contextmanager
def new_dynamic(main: MainTrace):
    """Make ``main`` the dynamic trace: every bind is staged into it (make_jaxpr, jit)."""
    prev, _state.dynamic = _state.dynamic, main
    try:
        yield
    finally:
        _state.dynamic = prev


def current_level() -> int:
    return len(_state.stack) - 1


class Trace:
    """One interpretation of primitives; its tracers box values at one level."""

    def __init__(self, main: MainTrace):
        self.main = main

    def pure(self, val):
        raise NotImplementedError

    lift = pure

    def process_primitive(self, primitive, tracers, params):
        raise NotImplementedError


class EvalTrace(Trace):
    """The bottom of the stack: run the implementation on concrete values."""

    def pure(self, x):
        return x

    lift = pure

    def process_primitive(self, primitive, tracers, params):
        outs = apply_impl(primitive, tracers, params)
        if config.flags.debug_nans:
            check_nans(primitive, outs)
        return outs


def check_nans(primitive, outs):
    """Raise ``FloatingPointError`` naming ``primitive`` if an output holds a NaN."""
    for out in outs:
        arr = np.asarray(out)
        if arr.dtype.kind == "f" and np.isnan(arr).any():
            raise FloatingPointError(
                f"debug_nans: primitive '{primitive.name}' produced a NaN "
                f"(output {arr.dtype}{list(arr.shape)}); turn the check off with "
                'fg.config.update("debug_nans", False).'
            )


class Tracer:
    """A value boxed by a trace. Operators forward to ``fgrad.numpy``."""

    __array_priority__ = 1000
    _trace: Trace

    aval = property(lambda self: NotImplemented)

    def full_lower(self):
        return self

    def concrete_value(self):
        """The concrete array behind this tracer, or None when it is abstract."""
        return None

    shape = property(lambda self: self.aval.shape)
    dtype = property(lambda self: self.aval.dtype)
    ndim = property(lambda self: self.aval.ndim)
    size = property(lambda self: self.aval.size)
    weak_type = property(lambda self: self.aval.weak_type)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def _concretize(self, what: str):
        val = self.concrete_value()
        if val is None:
            raise ConcretizationError(what, self.aval, user_frame_summary())
        return val

    def __bool__(self):
        return bool(self._concretize("bool()"))

    def __int__(self):
        return int(self._concretize("int()"))

    def __float__(self):
        return float(self._concretize("float()"))

    def __index__(self):
        return int(np.asarray(self._concretize("__index__()")).__index__())

    def __complex__(self):
        return complex(self._concretize("complex()"))

    def carries_gradient(self) -> bool:
        """Whether a transform differentiates through this value (False for one that only
        depends on constants and ``stop_gradient`` outputs, where the trace can tell)."""
        return True

    def __array__(self, dtype=None, copy=None):
        val = np.asarray(self._concretize("np.asarray()"))
        if val.dtype.kind == "f" and self.carries_gradient():
            # NB: a concrete float tracer is being differentiated (eager grad/vjp/jvp): a
            # NumPy copy would be a constant. float(x) and x.item() stay allowed, as
            # PyTorch's .item() (docs/kinks.md); integer values index and branch freely.
            raise TracerArrayConversionError(self.aval, user_frame_summary())
        return val if dtype is None else val.astype(dtype)

    def item(self):
        return np.asarray(self._concretize(".item()")).item()

    def tolist(self):
        return np.asarray(self._concretize(".tolist()")).tolist()

    def __hash__(self):
        raise TypeError(
            "fgrad tracers are unhashable; if you need a static value, pass it "
            "through static_argnums instead."
        )

    def __repr__(self):
        return f"Traced<{self.aval.str_short()}>with<{type(self._trace).__name__}>"

    def __str__(self):
        return f"Traced<{self.aval.str_short()}>"

    def __format__(self, spec):
        return str(self) if not spec else format(self._concretize("format()"), spec)

    # Operators and methods are attached by fgrad._src.numpy.tracer_methods.


class _TraceState(threading.local):
    def __init__(self):
        self.stack = [MainTrace(0, EvalTrace, None)]
        self.dynamic = self.stack[0]


_state = _TraceState()


def find_top_trace(xs) -> Trace:
    """The trace of the highest-level tracer in ``xs`` (or the dynamic trace if higher)."""
    top = _state.dynamic
    level = top.level
    trace = None
    for x in xs:
        if isinstance(x, Tracer):
            main = x._trace.main
            if main.level > level:
                top, level, trace = main, main.level, x._trace
    if trace is None:
        return top.trace_type(top)
    stack = _state.stack
    if level >= len(stack) or stack[level] is not top:
        raise _escaped_tracer(_tracer_repr_at(xs, top))
    # NB: a Trace holds nothing but its main, so the top tracer's own trace object
    # is reused instead of building an equal one on every bind.
    return trace


def _escaped_tracer(tracer_repr: str) -> UnexpectedTracerError:
    return UnexpectedTracerError(
        f"Escaped tracer {tracer_repr}: a value traced by a transform that has returned (or "
        "that runs in another thread) was stored, for example in a global or a list, and "
        "used again here. Return it from the transformed function, or pass it in as an "
        "argument.")


def _tracer_repr_at(xs, main) -> str:
    """The repr of the first of ``xs`` traced at ``main`` (for error messages)."""
    for x in xs:
        if isinstance(x, Tracer) and x._trace.main is main:
            return repr(x)
    return "value"


def full_lower(val):
    return val.full_lower() if isinstance(val, Tracer) else val


def full_raise(trace: Trace, val):
    if not isinstance(val, Tracer):
        if not is_array_like(val):
            get_aval(val)  # raises a clear TypeError
        return trace.pure(val)
    level = trace.main.level
    main = val._trace.main
    if main is trace.main:
        return val
    if main.level < level:
        stack = _state.stack
        if stack[main.level] is not main:  # a tracer of a transform that has returned
            raise _escaped_tracer(repr(val))
        return trace.lift(val)
    if main.level > level:
        raise UnexpectedTracerError(
            f"Escaped tracer {val!r}: a value traced by an inner transform leaked out of it. "
            "Return it from the transformed function instead of storing it."
        )
    raise _escaped_tracer(repr(val))


def concrete_value_of(x):
    """The concrete value of ``x`` (itself for arrays), or None for an abstract tracer."""
    return x.concrete_value() if isinstance(x, Tracer) else x


def concrete_or_error(x, what: str):
    """Return the concrete value of ``x`` or raise ``ConcretizationError`` naming ``what``."""
    if isinstance(x, Tracer):
        return x._concretize(what)
    return x

