"""Activation functions and the Gaussian integrals of their outputs.

Each activation ``g`` provides, for jointly Gaussian fields ``(u, v)`` with zero
mean, variances ``c11``, ``c22`` and covariance ``c12``:

* the pair correlation ``I(c11, c12, c22) = <g(u) g(v)>`` and its first and
  second derivatives with respect to the covariance entries (Cython kernels);
* the mean ``<g(u)>`` and its derivative with respect to ``c11``;
* the unit-variance pair correlation ``I(rho) = I(1, rho, 1)`` with its
  derivatives in ``rho``, which is all the site-symmetric theory needs;
* the same quantities in mpmath at any working precision ``dps``.

The double-precision kernels are accurate to a few ulp over the whole domain
(see the accuracy note in ``reluspec/_kernels.pyx``). A correlation
``c12 / sqrt(c11 c22)`` that exceeds 1 in magnitude by at most
:data:`CORRELATION_TOLERANCE` (8 ulp of 1) is rounding and is treated as
exactly +1 or -1; a larger one raises ``ValueError``.
"""

from __future__ import annotations

import itertools
import math
import operator
import os
import threading
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor

import mpmath
import numpy as np
from scipy import special

from reluspec import _kernels

__all__ = ["CORRELATION_TOLERANCE", "Activation", "Erf", "ReLU", "activation"]

#: Largest excess of ``|c12| / sqrt(c11 c22)`` over 1 that counts as rounding.
CORRELATION_TOLERANCE: float = _kernels.CORRELATION_TOLERANCE


class Activation(ABC):
    """Interface shared by all activations.

    Array methods accept anything numpy can broadcast and return float64
    arrays of the broadcast shape; scalar (0-d) inputs give numpy ``float64``
    scalars. Invalid covariances raise ``ValueError`` naming the value and
    the valid range. The ``*_mp`` methods accept floats, strings or mpmath
    numbers and return ``mpmath.mpf`` values rounded to ``dps`` digits.
    """

    #: Name used by :func:`activation` and the command line.
    name: str = ""

    # -- the function itself, for simulations -------------------------------
    @abstractmethod
    def __call__(self, x): ...

    @abstractmethod
    def derivative(self, x): ...

    # -- pair correlation for a general 2x2 covariance ----------------------
    @abstractmethod
    def pair(self, c11, c12, c22): ...

    @abstractmethod
    def pair_gradient(self, c11, c12, c22):
        """Return ``(dI/dc11, dI/dc12, dI/dc22)``."""

    @abstractmethod
    def pair_hessian(self, c11, c12, c22):
        """Return the six second derivatives
        ``(I_11_11, I_11_12, I_11_22, I_12_12, I_12_22, I_22_22)``."""

    @abstractmethod
    def mean(self, c11): ...

    @abstractmethod
    def mean_derivative(self, c11): ...

    # -- unit variances, correlation rho ------------------------------------
    @abstractmethod
    def unit_pair(self, rho):
        """Return ``I(1, rho, 1)``."""

    @abstractmethod
    def unit_pair_derivative(self, rho, order=1):
        """Return ``d^order I(1, rho, 1) / d rho^order`` for order 1, 2 or 3."""

    @abstractmethod
    def unit_pair_deficit(self, delta):
        """Return ``I(1, 1, 1) - I(1, 1 - delta, 1)`` for ``0 <= delta <= 2``,
        to full relative precision when ``delta`` is small."""

    # -- mpmath versions -----------------------------------------------------
    @abstractmethod
    def pair_mp(self, c11, c12, c22, dps=50): ...

    @abstractmethod
    def pair_gradient_mp(self, c11, c12, c22, dps=50): ...

    @abstractmethod
    def pair_hessian_mp(self, c11, c12, c22, dps=50): ...

    @abstractmethod
    def mean_mp(self, c11, dps=50): ...

    @abstractmethod
    def unit_pair_mp(self, rho, dps=50): ...

    @abstractmethod
    def unit_pair_derivative_mp(self, rho, order=1, dps=50): ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self).__name__)


_REGISTRY: dict[str, type[Activation]] = {}


def activation(name: str) -> Activation:
    """Return a new activation looked up by ``name`` (case-insensitive)."""
    key = str(name).strip().lower()
    if key not in _REGISTRY:
        valid = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown activation {name!r}; valid names are: {valid}")
    return _REGISTRY[key]()


def _as_float_array(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


# -- argument handling shared by the closed-form activations -----------------------

_SCALAR_TYPES = (float, int, np.floating, np.integer)

# Codes of _kernels.unit: which unit-variance function to evaluate.
_UNIT_VALUE, _UNIT_DERIVATIVE, _UNIT_DEFICIT, _UNIT_NONLINEAR = 0, 1, 2, 3


def _thread_count() -> int:
    """Threads for large arrays: ``RELUSPEC_NUM_THREADS`` or the CPU count."""
    value = os.environ.get("RELUSPEC_NUM_THREADS", "")
    if value.strip():
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(
                f"RELUSPEC_NUM_THREADS = {value!r} is invalid; it must be a "
                "positive integer"
            ) from None
    return os.cpu_count() or 1


_THREADS = _thread_count()
# Elements per thread below which splitting an array costs more than it saves
# (thread hand-off is about 20 microseconds, a kernel call about 20 ns each).
_MIN_ELEMENTS_PER_THREAD = 1 << 15
_executor: ThreadPoolExecutor | None = None
_executor_pid = -1
_executor_lock = threading.Lock()


def _thread_pool() -> ThreadPoolExecutor:
    """Return the kernel thread pool of this process, created on first use
    (and again after a fork, whose child has no threads)."""
    global _executor, _executor_pid
    with _executor_lock:
        if _executor is None or _executor_pid != os.getpid():
            _executor = ThreadPoolExecutor(
                max_workers=_THREADS - 1, thread_name_prefix="reluspec-kernel"
            )
            _executor_pid = os.getpid()
        return _executor


def _call_kernel(kernel, params, inputs, outputs) -> int:
    """Run ``kernel(*params, *inputs, *outputs)`` on 1-D views, split across
    threads for large arrays (the kernels release the GIL). Return the index
    of the first invalid element, or -1."""
    n = outputs[0].shape[0]
    threads = min(_THREADS, n // _MIN_ELEMENTS_PER_THREAD)
    if threads <= 1:
        return kernel(*params, *inputs, *outputs)
    bounds = [n * i // threads for i in range(threads + 1)]
    chunks = list(itertools.pairwise(bounds))

    def run(chunk):
        lo, hi = chunk
        views = [x[lo:hi] for x in inputs] + [y[lo:hi] for y in outputs]
        return kernel(*params, *views)

    pool = _thread_pool()
    futures = [pool.submit(run, chunk) for chunk in chunks[1:]]
    results = [run(chunks[0])] + [future.result() for future in futures]
    for (lo, _), bad in zip(chunks, results):
        if bad >= 0:
            return lo + bad
    return -1


def _is_scalar(*args) -> bool:
    return all(isinstance(x, _SCALAR_TYPES) for x in args)


def _flat_broadcast(*args):
    """Broadcast the arguments; return their shape and 1-D float64 views."""
    arrays = np.broadcast_arrays(*(_as_float_array(x) for x in args))
    shape = arrays[0].shape
    return shape, [a.reshape(-1) for a in arrays]


def _shaped(values: np.ndarray, shape):
    if shape == ():
        return np.float64(values[0])
    return values.reshape(shape)


def _index_text(index: int, shape) -> str:
    if shape == ():
        return ""
    return f" at index {tuple(int(i) for i in np.unravel_index(index, shape))}"


def _covariance_error(kind, c11, c12, c22, where, derivative) -> ValueError:
    """Build the error for one covariance that a kernel rejected."""
    c11, c12, c22 = float(c11), float(c12), float(c22)
    status = _kernels.covariance_status(kind, c11, c12, c22, derivative)
    value = f"(c11, c12, c22) = ({c11!r}, {c12!r}, {c22!r}){where}"
    if status == _kernels.STATUS_NONFINITE:
        return ValueError(f"covariance {value} is not finite; all entries must be")
    if status == _kernels.STATUS_NEGATIVE_VARIANCE:
        return ValueError(
            f"covariance {value} has a negative variance; c11 and c22 must be >= 0"
        )
    if status == _kernels.STATUS_CORRELATION:
        rho = c12 / (math.sqrt(c11) * math.sqrt(c22)) if c11 * c22 > 0 else math.inf
        return ValueError(
            f"covariance {value} has correlation c12 / sqrt(c11 c22) = {rho!r}; "
            f"the valid range is [-1, 1], up to {CORRELATION_TOLERANCE:.2g} of "
            "rounding"
        )
    if status == _kernels.STATUS_ZERO_VARIANCE:
        return ValueError(
            f"covariance {value} has a zero variance; the ReLU pair derivatives "
            "exist only for c11 > 0 and c22 > 0"
        )
    # The kernel and covariance_status disagree: a bug, not an input error.
    raise RuntimeError(f"kernel rejected the valid covariance {value}")


def _unit_error(kind, what, x, where) -> ValueError:
    """Build the error for one unit-variance argument that a kernel rejected."""
    x = float(x)
    status = _kernels.unit_status(kind, what, x)
    if what == _UNIT_DEFICIT:
        name, valid = "delta", "[0, 2]"
    else:
        name, valid = "rho", "[-1, 1]"
    if status == _kernels.STATUS_NONFINITE:
        return ValueError(f"{name} = {x!r}{where} is not finite; valid range {valid}")
    if status in (_kernels.STATUS_CORRELATION, _kernels.STATUS_OUT_OF_RANGE):
        return ValueError(
            f"{name} = {x!r}{where} is outside the valid range {valid} "
            f"(rounding up to {CORRELATION_TOLERANCE:.2g} is accepted)"
        )
    raise RuntimeError(f"kernel rejected the valid argument {name} = {x!r}")


def _check_order(order) -> int:
    try:
        value = operator.index(order)
    except TypeError:
        value = None
    if value not in (1, 2, 3):
        raise ValueError(f"order = {order!r} is invalid; valid orders are 1, 2, 3")
    return value


#: Largest working precision accepted by the mpmath methods, in decimal digits;
#: one evaluation at this precision takes about a second.
MAX_DPS = 10_000


def _check_dps(dps) -> int:
    try:
        value = operator.index(dps)
    except TypeError:
        value = 0
    if not 1 <= value <= MAX_DPS:
        raise ValueError(
            f"dps = {dps!r} is invalid; it must be an integer from 1 to {MAX_DPS}"
        )
    return value


class _ClosedFormActivation(Activation):
    """Activation whose Gaussian integrals are closed forms in ``_kernels``."""

    _kind: int

    # -- double precision, through the kernels ------------------------------
    def pair(self, c11, c12, c22):
        """Return the pair correlation ``I(c11, c12, c22) = <g(u) g(v)>``."""
        if _is_scalar(c11, c12, c22):
            value = _kernels.pair_scalar(self._kind, c11, c12, c22)
            if not math.isnan(value):
                return np.float64(value)
        shape, (a, c, b) = _flat_broadcast(c11, c12, c22)
        out = np.empty(a.shape[0])
        bad = _call_kernel(_kernels.pair, (self._kind,), (a, c, b), [out])
        if bad >= 0:
            where = _index_text(bad, shape)
            raise _covariance_error(self._kind, a[bad], c[bad], b[bad], where, False)
        return _shaped(out, shape)

    def _pair_derivatives(self, scalar_kernel, array_kernel, count, c11, c12, c22):
        """Evaluate ``count`` derivatives of the pair correlation on scalars or
        broadcast arrays, raising ValueError at the first invalid covariance."""
        if _is_scalar(c11, c12, c22):
            values = scalar_kernel(self._kind, c11, c12, c22)
            if values is not None:
                return tuple(np.float64(v) for v in values)
        shape, (a, c, b) = _flat_broadcast(c11, c12, c22)
        outs = [np.empty(a.shape[0]) for _ in range(count)]
        bad = _call_kernel(array_kernel, (self._kind,), (a, c, b), outs)
        if bad >= 0:
            where = _index_text(bad, shape)
            raise _covariance_error(self._kind, a[bad], c[bad], b[bad], where, True)
        return tuple(_shaped(o, shape) for o in outs)

    def pair_gradient(self, c11, c12, c22):
        """Return ``(dI/dc11, dI/dc12, dI/dc22)``."""
        return self._pair_derivatives(
            _kernels.pair_gradient_scalar, _kernels.pair_gradient, 3, c11, c12, c22
        )

    def pair_hessian(self, c11, c12, c22):
        """Return ``(I_11_11, I_11_12, I_11_22, I_12_12, I_12_22, I_22_22)``,
        where ``I_11_12 = d^2 I / dc11 dc12`` and so on."""
        return self._pair_derivatives(
            _kernels.pair_hessian_scalar, _kernels.pair_hessian, 6, c11, c12, c22
        )

    def _mean(self, c11, derivative):
        shape, (a,) = _flat_broadcast(c11)
        out = np.empty(a.shape[0])
        bad = _call_kernel(
            lambda kind, x, y: _kernels.mean(kind, x, y, derivative),
            (self._kind,),
            (a,),
            [out],
        )
        if bad >= 0:
            where = _index_text(bad, shape)
            raise ValueError(
                f"variance c11 = {float(a[bad])!r}{where} is invalid; it must be "
                "finite and >= 0"
            )
        return _shaped(out, shape)

    def mean(self, c11):
        """Return the mean output ``<g(u)>`` for a field of variance ``c11``."""
        return self._mean(c11, False)

    def mean_derivative(self, c11):
        """Return ``d<g(u)>/dc11``."""
        return self._mean(c11, True)

    def _unit(self, what, order, x):
        if isinstance(x, _SCALAR_TYPES):
            value = _kernels.unit_scalar(self._kind, what, order, x)
            if not math.isnan(value):
                return np.float64(value)
        shape, (flat,) = _flat_broadcast(x)
        out = np.empty(flat.shape[0])
        bad = _call_kernel(_kernels.unit, (self._kind, what, order), (flat,), [out])
        if bad >= 0:
            raise _unit_error(self._kind, what, flat[bad], _index_text(bad, shape))
        return _shaped(out, shape)

    def unit_pair(self, rho):
        """Return ``I(rho) = I(1, rho, 1)``."""
        return self._unit(_UNIT_VALUE, 1, rho)

    def unit_pair_derivative(self, rho, order=1):
        """Return ``d^order I(1, rho, 1) / d rho^order`` for order 1, 2 or 3.

        Where the derivative diverges (ReLU at ``rho = +-1`` for orders 2
        and 3) the value is the signed infinity.
        """
        return self._unit(_UNIT_DERIVATIVE, _check_order(order), rho)

    def unit_pair_deficit(self, delta):
        """Return ``I(1) - I(1 - delta)`` for ``0 <= delta <= 2``.

        The difference is formed without cancellation, so it keeps its full
        relative precision as ``delta -> 0`` (near perfect learning,
        ``delta = 1 - R``). A ``delta`` below 0 or above 2 by at most
        :data:`CORRELATION_TOLERANCE` is clamped.
        """
        return self._unit(_UNIT_DEFICIT, 1, delta)

    def unit_pair_nonlinear(self, rho):
        """Return ``I(rho) - I(0) - rho I'(0)``, the part of the unit-variance
        pair correlation beyond linear order in ``rho``.

        Formed without cancellation, so that it keeps its relative precision
        as ``rho -> 0``; it is of order ``rho**2`` (ReLU) or ``rho**3`` (erf).
        """
        return self._unit(_UNIT_NONLINEAR, 1, rho)

    # -- mpmath --------------------------------------------------------------
    def unit_pair_mp(self, rho, dps=50):
        """Return ``I(1, rho, 1)`` in mpmath at ``dps`` digits."""
        return self.pair_mp(1, rho, 1, dps=dps)

    def unit_pair_deficit_mp(self, delta, dps=50):
        """Return ``I(1) - I(1 - delta)`` in mpmath at ``dps`` digits."""
        dps = _check_dps(dps)
        with mpmath.workdps(dps + 10):
            delta = mpmath.mpf(delta)
            if not (mpmath.isfinite(delta) and 0 <= delta <= 2):
                raise ValueError(f"delta = {delta} is outside the valid range [0, 2]")
            guard = _cancellation_digits(delta)
        with mpmath.workdps(dps + 10 + guard):
            value = self.pair_mp(1, 1, 1, dps=dps + 10 + guard) - self.pair_mp(
                1, 1 - delta, 1, dps=dps + 10 + guard
            )
        with mpmath.workdps(dps):
            return +value


def _cancellation_digits(small) -> int:
    """Decimal digits lost when a quantity of relative size ``small`` is formed
    as a difference of numbers of order 1."""
    if small == 0:
        return 0
    return max(0, int(-mpmath.log10(abs(small))) + 1)


def _mp_covariance(c11, c12, c22):
    """Convert and validate a covariance at the current mpmath precision.

    Return ``(c11, c12, c22, D)`` with ``D = c11 c22 - c12**2 >= 0``; a
    correlation beyond 1 by at most :data:`CORRELATION_TOLERANCE` is clamped.
    """
    a, c, b = mpmath.mpf(c11), mpmath.mpf(c12), mpmath.mpf(c22)
    value = f"(c11, c12, c22) = ({a}, {c}, {b})"
    if not all(mpmath.isfinite(x) for x in (a, b, c)):
        raise ValueError(f"covariance {value} is not finite; all entries must be")
    if a < 0 or b < 0:
        raise ValueError(
            f"covariance {value} has a negative variance; c11 and c22 must be >= 0"
        )
    ab = a * b
    det = ab - c * c
    if det < 0:
        tol = 2 * CORRELATION_TOLERANCE + CORRELATION_TOLERANCE**2
        if det < -tol * ab:
            raise ValueError(
                f"covariance {value} has |c12| / sqrt(c11 c22) > 1; the valid range "
                f"is [-1, 1], up to {CORRELATION_TOLERANCE:.2g} of rounding"
            )
        det = mpmath.mpf(0)
        c = mpmath.sign(c) * mpmath.sqrt(ab)
    return a, c, b, det


class ReLU(_ClosedFormActivation):
    r"""Rectified linear unit ``g(x) = max(0, x)``.

    Pair correlation (the degree-1 arc-cosine kernel of Y. Cho and L. K. Saul,
    NIPS 22, 2009):

    .. math::

        I(c_{11}, c_{12}, c_{22}) = \frac{1}{2\pi}\left(\sqrt{D}
        + (\pi - \theta)\, c_{12}\right), \qquad
        D = c_{11} c_{22} - c_{12}^2, \quad
        \theta = \operatorname{atan2}(\sqrt{D}, c_{12}),

    mean :math:`\langle g(u)\rangle = \sqrt{c_{11} / (2\pi)}`. Derivatives:
    :math:`\partial I / \partial c_{12} = (\pi - \theta) / (2\pi)`,
    :math:`\partial I / \partial c_{11} = \sqrt{D} / (4\pi c_{11})`,
    :math:`\partial^2 I / \partial c_{12}^2 = 1 / (2\pi\sqrt{D})`,
    :math:`\partial^2 I / \partial c_{11} \partial c_{12} = -c_{12} / (4\pi c_{11}
    \sqrt{D})`, :math:`\partial^2 I / \partial c_{11} \partial c_{22} = 1 /
    (8\pi\sqrt{D})`, :math:`\partial^2 I / \partial c_{11}^2 = (c_{12}^2 -
    c_{11} c_{22} / 2) / (4\pi c_{11}^2 \sqrt{D})`.

    At correlation +-1 (``D = 0``) the first derivatives are finite:
    ``dI/dc12`` is 1/2 or 0, and ``dI/dc11 = 0``. The second derivatives
    diverge there and are returned as signed infinities: ``+inf``, except
    ``I_11_12`` and ``I_12_22``, which are ``-sign(c12) inf``. A zero
    variance is allowed for the values (``I = 0``) but not for the
    derivatives, which do not exist there (``ValueError``).
    """

    name = "relu"
    _kind = _kernels.RELU

    def __call__(self, x):
        """Return ``max(0, x)`` elementwise."""
        return np.maximum(_as_float_array(x), 0.0)

    def derivative(self, x):
        """Return the Heaviside step ``1[x > 0]`` (0 at ``x = 0``)."""
        return np.where(_as_float_array(x) > 0.0, 1.0, 0.0)

    def pair_mp(self, c11, c12, c22, dps=50):
        """Return :meth:`pair` in mpmath at ``dps`` digits.

        For negative correlation the two terms cancel like ``t**2`` with
        ``t = sqrt(D) / |c12|``; the working precision carries that many
        extra digits.
        """
        dps = _check_dps(dps)
        with mpmath.workdps(dps + 10):
            _, c, _, det = _mp_covariance(c11, c12, c22)
            guard = 0
            if c < 0 and det > 0:
                guard = _cancellation_digits(det / (c * c))
        with mpmath.workdps(2 * dps + 20 + guard):
            _, c, _, det = _mp_covariance(c11, c12, c22)
            r = mpmath.sqrt(det)
            value = (r + mpmath.atan2(r, -c) * c) / (2 * mpmath.pi)
        with mpmath.workdps(dps):
            return +value

    def pair_gradient_mp(self, c11, c12, c22, dps=50):
        """Return :meth:`pair_gradient` in mpmath at ``dps`` digits."""
        dps = _check_dps(dps)
        with mpmath.workdps(2 * dps + 20):
            a, c, b, det = _mp_covariance(c11, c12, c22)
            _require_positive_variances(a, c, b)
            r = mpmath.sqrt(det)
            four_pi = 4 * mpmath.pi
            values = (
                r / (four_pi * a),
                mpmath.atan2(r, -c) / (2 * mpmath.pi),
                r / (four_pi * b),
            )
        with mpmath.workdps(dps):
            return tuple(+v for v in values)

    def pair_hessian_mp(self, c11, c12, c22, dps=50):
        """Return :meth:`pair_hessian` in mpmath at ``dps`` digits."""
        dps = _check_dps(dps)
        with mpmath.workdps(2 * dps + 20):
            a, c, b, det = _mp_covariance(c11, c12, c22)
            _require_positive_variances(a, c, b)
            if det == 0:
                inf = mpmath.inf
                sign = mpmath.sign(c)
                values = (inf, -sign * inf, inf, inf, -sign * inf, inf)
            else:
                r = mpmath.sqrt(det)
                pi = mpmath.pi
                numerator = c * c - a * b / 2
                values = (
                    numerator / (4 * pi * a * a * r),
                    -c / (4 * pi * a * r),
                    1 / (8 * pi * r),
                    1 / (2 * pi * r),
                    -c / (4 * pi * b * r),
                    numerator / (4 * pi * b * b * r),
                )
        with mpmath.workdps(dps):
            return tuple(+v for v in values)

    def mean_mp(self, c11, dps=50):
        """Return :meth:`mean` in mpmath at ``dps`` digits."""
        dps = _check_dps(dps)
        with mpmath.workdps(dps + 10):
            a = _mp_variance(c11)
            value = mpmath.sqrt(a / (2 * mpmath.pi))
        with mpmath.workdps(dps):
            return +value

    def unit_pair_derivative_mp(self, rho, order=1, dps=50):
        """Return :meth:`unit_pair_derivative` in mpmath at ``dps`` digits."""
        order = _check_order(order)
        dps = _check_dps(dps)
        with mpmath.workdps(2 * dps + 20):
            _, rho, _, det = _mp_covariance(1, rho, 1)
            pi = mpmath.pi
            if order == 1:
                value = mpmath.atan2(mpmath.sqrt(det), -rho) / (2 * pi)
            elif det == 0:
                value = mpmath.inf if order == 2 else mpmath.sign(rho) * mpmath.inf
            elif order == 2:
                value = 1 / (2 * pi * mpmath.sqrt(det))
            else:
                value = rho / (2 * pi * det * mpmath.sqrt(det))
        with mpmath.workdps(dps):
            return +value


class Erf(_ClosedFormActivation):
    r"""Sigmoidal unit ``g(x) = erf(x / sqrt(2))``.

    Pair correlation (D. Saad and S. A. Solla, Phys. Rev. E 52, 4225, 1995,
    in this scaling):

    .. math::

        I(c_{11}, c_{12}, c_{22}) = \frac{2}{\pi} \arcsin
        \frac{c_{12}}{\sqrt{(1 + c_{11})(1 + c_{22})}}
        = \frac{2}{\pi} \operatorname{atan2}(c_{12}, \sqrt{E}),
        \qquad E = (1 + c_{11})(1 + c_{22}) - c_{12}^2 \ge 1,

    mean 0. Derivatives, with :math:`u = c_{12} / \sqrt{E}`:
    :math:`\partial I / \partial c_{12} = (2/\pi) / \sqrt{E}`,
    :math:`\partial I / \partial c_{11} = -u / (\pi (1 + c_{11}))`,
    :math:`\partial^2 I / \partial c_{12}^2 = (2/\pi) u / E`,
    :math:`\partial^2 I / \partial c_{11} \partial c_{12} = -(1 + c_{22}) /
    (\pi E^{3/2})`, :math:`\partial^2 I / \partial c_{11} \partial c_{22} = u /
    (2\pi E)`, :math:`\partial^2 I / \partial c_{11}^2 = u (1 + (1 + c_{11})(1 +
    c_{22}) / (2E)) / (\pi (1 + c_{11})^2)`. All are finite on the whole
    domain, including correlation +-1 and zero variances.
    """

    name = "erf"
    _kind = _kernels.ERF

    def __call__(self, x):
        """Return ``erf(x / sqrt(2))`` elementwise."""
        return special.erf(_as_float_array(x) / math.sqrt(2.0))

    def derivative(self, x):
        """Return ``sqrt(2 / pi) exp(-x**2 / 2)`` elementwise."""
        x = _as_float_array(x)
        return math.sqrt(2.0 / math.pi) * np.exp(-0.5 * x * x)

    def pair_mp(self, c11, c12, c22, dps=50):
        """Return :meth:`pair` in mpmath at ``dps`` digits."""
        dps = _check_dps(dps)
        with mpmath.workdps(2 * dps + 20):
            a, c, b, det = _mp_covariance(c11, c12, c22)
            value = 2 / mpmath.pi * mpmath.atan2(c, mpmath.sqrt(1 + a + b + det))
        with mpmath.workdps(dps):
            return +value

    def pair_gradient_mp(self, c11, c12, c22, dps=50):
        """Return :meth:`pair_gradient` in mpmath at ``dps`` digits."""
        dps = _check_dps(dps)
        with mpmath.workdps(2 * dps + 20):
            a, c, b, det = _mp_covariance(c11, c12, c22)
            root = mpmath.sqrt(1 + a + b + det)
            pi = mpmath.pi
            values = (
                -c / (pi * (1 + a) * root),
                2 / (pi * root),
                -c / (pi * (1 + b) * root),
            )
        with mpmath.workdps(dps):
            return tuple(+v for v in values)

    def pair_hessian_mp(self, c11, c12, c22, dps=50):
        """Return :meth:`pair_hessian` in mpmath at ``dps`` digits."""
        dps = _check_dps(dps)
        with mpmath.workdps(2 * dps + 20):
            a, c, b, det = _mp_covariance(c11, c12, c22)
            e = 1 + a + b + det
            e32 = e * mpmath.sqrt(e)
            pi = mpmath.pi
            A, B = 1 + a, 1 + b
            values = (
                c * (e + A * B / 2) / (pi * A * A * e32),
                -B / (pi * e32),
                c / (2 * pi * e32),
                2 * c / (pi * e32),
                -A / (pi * e32),
                c * (e + A * B / 2) / (pi * B * B * e32),
            )
        with mpmath.workdps(dps):
            return tuple(+v for v in values)

    def mean_mp(self, c11, dps=50):
        """Return :meth:`mean` (zero) in mpmath at ``dps`` digits."""
        dps = _check_dps(dps)
        with mpmath.workdps(dps):
            _mp_variance(c11)
            return mpmath.mpf(0)

    def unit_pair_derivative_mp(self, rho, order=1, dps=50):
        """Return :meth:`unit_pair_derivative` in mpmath at ``dps`` digits."""
        order = _check_order(order)
        dps = _check_dps(dps)
        with mpmath.workdps(2 * dps + 20):
            _, rho, _, det = _mp_covariance(1, rho, 1)
            e = 3 + det  # = 4 - rho**2
            scale = 2 / mpmath.pi
            if order == 1:
                value = scale / mpmath.sqrt(e)
            elif order == 2:
                value = scale * rho / (e * mpmath.sqrt(e))
            else:
                value = scale * (4 + 2 * rho * rho) / (e * e * mpmath.sqrt(e))
        with mpmath.workdps(dps):
            return +value


def _mp_variance(c11):
    a = mpmath.mpf(c11)
    if not (mpmath.isfinite(a) and a >= 0):
        raise ValueError(f"variance c11 = {a} is invalid; it must be finite and >= 0")
    return a


def _require_positive_variances(a, c, b) -> None:
    if a == 0 or b == 0:
        raise ValueError(
            f"covariance (c11, c12, c22) = ({a}, {c}, {b}) has a zero variance; the "
            "ReLU pair derivatives exist only for c11 > 0 and c22 > 0"
        )


_REGISTRY["relu"] = ReLU
_REGISTRY["erf"] = Erf
