"""Accuracy of the Cython pair-correlation kernels against mpmath.

The references are computed independently of the library. Pair correlations
come from the closed forms as written in the literature (``arccos`` for ReLU,
``arcsin`` for erf) at 120 digits, and derivatives from mpmath numerical
differentiation. A few values are checked by two-dimensional quadrature of the
Gaussian integral itself.
"""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import integrate

from reluspec import _kernels
from reluspec.activations import CORRELATION_TOLERANCE, Erf, ReLU

ACTIVATIONS = [ReLU(), Erf()]
IDS = ["relu", "erf"]
# The target accuracy of every kernel output, in units in the last place.
MAX_ULP = 4.0
REFERENCE_DPS = 120


def reference_dps() -> int:
    """Working precision of the references: at least REFERENCE_DPS, and more
    when called inside mpmath.diff, which raises the precision to resolve its
    step."""
    return max(REFERENCE_DPS, mpmath.mp.dps + 20)


# -- references ----------------------------------------------------------------


def relu_reference(a, c, b):
    """ReLU pair correlation sqrt(ab)/(2 pi) (sin t + (pi - t) cos t), cos t = rho."""
    with mpmath.workdps(reference_dps()):
        a, c, b = mpmath.mpf(a), mpmath.mpf(c), mpmath.mpf(b)
        if a == 0 or b == 0:
            return mpmath.mpf(0)
        root = mpmath.sqrt(a * b)
        rho = max(-1, min(1, c / root))
        if rho == -1:
            return mpmath.mpf(0)  # sin(pi) is not exactly 0 at finite precision
        theta = mpmath.acos(rho)
        return (
            root
            / (2 * mpmath.pi)
            * (mpmath.sin(theta) + (mpmath.pi - theta) * mpmath.cos(theta))
        )


def erf_reference(a, c, b):
    """erf pair correlation (2/pi) arcsin(c / sqrt((1 + a)(1 + b)))."""
    with mpmath.workdps(reference_dps()):
        a, c, b = mpmath.mpf(a), mpmath.mpf(c), mpmath.mpf(b)
        if c * c > a * b:
            c = mpmath.sign(c) * mpmath.sqrt(a * b)
        return 2 / mpmath.pi * mpmath.asin(c / mpmath.sqrt((1 + a) * (1 + b)))


REFERENCES = {"relu": relu_reference, "erf": erf_reference}


def ulp_error(value, reference) -> float:
    """Distance of a double from an mpmath reference, in ulp of the reference.

    Infinite references match only the same infinity.
    """
    value = float(value)
    if abs(reference) > np.finfo(float).max:
        # Infinite, or finite but beyond the double range: rounds to infinity.
        reference = mpmath.inf * mpmath.sign(reference)
    if mpmath.isinf(reference):
        same = math.isinf(value) and (value > 0) == (reference > 0)
        return 0.0 if same else math.inf
    if not math.isfinite(value):
        return math.inf
    spacing = np.spacing(abs(float(reference)))
    return float(abs(mpmath.mpf(value) - reference) / spacing)


def covariance(a, rho, b):
    """Covariance with variances a, b and correlation rho, clipped to |rho| <= 1."""
    c = rho * math.sqrt(a) * math.sqrt(b)
    bound = math.sqrt(a) * math.sqrt(b)
    return a, max(-bound, min(bound, c)), b


variances = st.floats(-300, 300).map(lambda e: 10.0**e)
correlations = st.one_of(
    st.floats(-1, 1),
    st.floats(-16, 0).map(lambda e: 1 - 10.0**e),
    st.floats(-16, 0).map(lambda e: -1 + 10.0**e),
    st.sampled_from([-1.0, 0.0, 1.0, -0.5, 0.5]),
)

# Correlations at and within a few ulp of +-1, and the other edge cases.
EDGE_CORRELATIONS = [
    1.0,
    1 - 2**-53,
    1 - 2**-52,
    1 - 5 * 2**-53,
    1 - 1e-15,
    1 - 1e-12,
    1 - 1e-8,
    -1.0,
    -1 + 2**-53,
    -1 + 2**-52,
    -1 + 1e-15,
    -1 + 1e-12,
    -1 + 1e-8,
    0.0,
    0.5,
    -0.5,
    -0.9,
    2**-1074,
    -1e-300,
]
EDGE_VARIANCES = [
    (1.0, 1.0),
    (1e-300, 1e-300),
    (1e300, 1e300),
    (1e-300, 1e300),
    (2.0, 0.5),
    (3.7e-200, 5.1e150),
]
EDGE_CASES = [
    covariance(a, rho, b) for a, b in EDGE_VARIANCES for rho in EDGE_CORRELATIONS
]


# -- values ------------------------------------------------------------------------


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@settings(max_examples=150)
@given(a=variances, rho=correlations, b=variances)
def test_pair_random_within_4_ulp(act, a, rho, b):
    a, c, b = covariance(a, rho, b)
    reference = REFERENCES[act.name](a, c, b)
    assert ulp_error(act.pair(a, c, b), reference) <= MAX_ULP


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
def test_pair_edge_cases_within_4_ulp(act):
    a, c, b = (np.array(x) for x in zip(*EDGE_CASES))
    values = act.pair(a, c, b)
    for i, (ai, ci, bi) in enumerate(EDGE_CASES):
        error = ulp_error(values[i], REFERENCES[act.name](ai, ci, bi))
        assert error <= MAX_ULP, (ai, ci, bi, error)


def test_relu_negative_correlation_sweep():
    """The cancellation region rho -> -1, densely, across the polynomial pieces."""
    act = ReLU()
    rho = -np.concatenate([1 - np.logspace(-16, 0, 400), np.linspace(0, 1, 200)])
    rho = np.clip(rho, -1, 0)
    values = act.unit_pair(rho)
    errors = [ulp_error(v, relu_reference(1, r, 1)) for v, r in zip(values, rho)]
    assert max(errors) <= MAX_ULP


def test_pair_special_values():
    relu, erf = ReLU(), Erf()
    assert relu.pair(1.0, 1.0, 1.0) == 0.5
    assert relu.pair(1.0, -1.0, 1.0) == 0.0
    assert relu.pair(4.0, 0.0, 1.0) == pytest.approx(1 / math.pi, rel=2e-16)
    assert erf.pair(1.0, 1.0, 1.0) == pytest.approx(1 / 3, rel=2e-16)
    assert erf.pair(1.0, 0.0, 7.0) == 0.0


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
def test_pair_zero_variance(act):
    assert act.pair(0.0, 0.0, 2.5) == 0.0
    assert act.pair(3.0, 0.0, 0.0) == 0.0
    with pytest.raises(ValueError, match="correlation"):
        act.pair(0.0, 1e-300, 1.0)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@settings(max_examples=60)
@given(a=variances, rho=correlations, b=variances)
def test_pair_symmetric_in_arguments(act, a, rho, b):
    a, c, b = covariance(a, rho, b)
    assert act.pair(a, c, b) == act.pair(b, c, a)
    g11, g12, g22 = act.pair_gradient(max(a, 1e-300), c, max(b, 1e-300))
    s11, s12, s22 = act.pair_gradient(max(b, 1e-300), c, max(a, 1e-300))
    assert (g11, g12, g22) == (s22, s12, s11)


@settings(max_examples=60)
@given(
    a=variances,
    rho=correlations,
    b=variances,
    k=st.integers(-150, 150),
    m=st.integers(-150, 150),
)
def test_relu_homogeneity(a, rho, b, k, m):
    """I(4**k a, 2**(k+m) c, 4**m b) = 2**(k+m) I(a, c, b); both sides are
    within a few ulp of the exact value, which scales exactly."""
    a, c, b = covariance(a, rho, b)
    for x, shift in ((a, 2 * k), (c, k + m), (b, 2 * m)):
        assume(x == 0 or -1000 < math.frexp(x)[1] + shift < 1000)
    scaled = (math.ldexp(a, 2 * k), math.ldexp(c, k + m), math.ldexp(b, 2 * m))
    expected = math.ldexp(float(ReLU().pair(a, c, b)), k + m)
    assert ReLU().pair(*scaled) == pytest.approx(expected, rel=4 * 2**-52)


# -- correlation at the edge of the domain -----------------------------------------


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_correlation_rounding_is_clamped(act, sign):
    for excess in (2**-52, 4 * 2**-52, CORRELATION_TOLERANCE):
        c = sign * (1.0 + excess)
        assert act.pair(1.0, c, 1.0) == act.pair(1.0, sign, 1.0)
        assert act.pair_gradient(1.0, c, 1.0) == act.pair_gradient(1.0, sign, 1.0)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@pytest.mark.parametrize("c", [1 + 1e-14, -1 - 1e-14, 2.0, -1e300])
def test_correlation_beyond_rounding_raises(act, c):
    with pytest.raises(ValueError, match=r"correlation .* valid range is \[-1, 1\]"):
        act.pair(1.0, c, 1.0)
    with pytest.raises(ValueError, match="correlation"):
        act.pair_gradient(np.ones(3), np.array([0.0, c, 0.5]), 1.0)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@pytest.mark.parametrize(
    "bad, pattern",
    [
        ((math.nan, 0.0, 1.0), "not finite"),
        ((1.0, math.inf, 1.0), "not finite"),
        ((-1.0, 0.0, 1.0), "negative variance"),
        ((1.0, 0.0, -1e-300), "negative variance"),
    ],
)
def test_invalid_covariance_raises(act, bad, pattern):
    with pytest.raises(ValueError, match=pattern):
        act.pair(*bad)
    with pytest.raises(ValueError, match=pattern):
        act.pair_hessian(*bad)


def test_error_names_index_of_bad_entry():
    c12 = np.zeros((2, 3))
    c12[1, 2] = 1.5
    with pytest.raises(ValueError, match=r"at index \(1, 2\)"):
        ReLU().pair(1.0, c12, 1.0)


# -- derivatives -----------------------------------------------------------------------


def derivative_references(act, a, c, b):
    """Closed-form mpmath gradient and Hessian, checked below against mp.diff."""
    return act.pair_gradient_mp(a, c, b), act.pair_hessian_mp(a, c, b)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@settings(max_examples=120)
@given(a=variances, rho=correlations, b=variances)
def test_derivatives_random_within_4_ulp(act, a, rho, b):
    a, c, b = covariance(a, rho, b)
    gradient_mp, hessian_mp = derivative_references(act, a, c, b)
    for value, reference in zip(act.pair_gradient(a, c, b), gradient_mp):
        assert ulp_error(value, reference) <= MAX_ULP
    for value, reference in zip(act.pair_hessian(a, c, b), hessian_mp):
        assert ulp_error(value, reference) <= MAX_ULP


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
def test_derivatives_edge_cases_within_4_ulp(act):
    a, c, b = (np.array(x) for x in zip(*EDGE_CASES))
    gradient = act.pair_gradient(a, c, b)
    hessian = act.pair_hessian(a, c, b)
    for i, (ai, ci, bi) in enumerate(EDGE_CASES):
        gradient_mp, hessian_mp = derivative_references(act, ai, ci, bi)
        for j, reference in enumerate(gradient_mp):
            assert ulp_error(gradient[j][i], reference) <= MAX_ULP, (ai, ci, bi, j)
        for j, reference in enumerate(hessian_mp):
            assert ulp_error(hessian[j][i], reference) <= MAX_ULP, (ai, ci, bi, j)


def test_relu_derivatives_at_correlation_one():
    """First derivatives are finite limits, second derivatives signed infinities."""
    act = ReLU()
    assert act.pair_gradient(2.0, 2.0, 2.0) == (0.0, 0.5, 0.0)
    assert act.pair_gradient(2.0, -2.0, 2.0) == (0.0, 0.0, 0.0)
    inf = math.inf
    assert act.pair_hessian(1.0, 1.0, 1.0) == (inf, -inf, inf, inf, -inf, inf)
    assert act.pair_hessian(1.0, -1.0, 1.0) == (inf, inf, inf, inf, inf, inf)
    # Approaching rho = 1 the first derivative tends to its limit 1/2.
    # With delta = 1 - rho, theta = sqrt(2 delta) (1 + delta / 12 + O(delta**2)).
    rho = 1 - 1e-12
    delta = 1.0 - rho
    theta = math.sqrt(2 * delta) * (1 + delta / 12)
    slope = act.pair_gradient(1.0, rho, 1.0)[1]
    assert slope == pytest.approx(0.5 - theta / (2 * math.pi), rel=1e-15)


def test_relu_derivatives_reject_zero_variance():
    with pytest.raises(ValueError, match="zero variance"):
        ReLU().pair_gradient(0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="zero variance"):
        ReLU().pair_hessian(1.0, 0.0, 0.0)


def test_erf_derivatives_at_zero_variance():
    act = Erf()
    gradient = act.pair_gradient(0.0, 0.0, 2.0)
    assert gradient == pytest.approx(
        (0.0, 2 / math.pi / math.sqrt(3.0), 0.0), rel=1e-15
    )


def mp_partials(function, point, dps=60):
    """First and second partial derivatives of function(a, c, b) by mp.diff."""
    names = (0, 1, 2)
    with mpmath.workdps(dps):
        point = [mpmath.mpf(x) for x in point]
        first = [
            mpmath.diff(function, point, tuple(int(i == j) for i in names))
            for j in names
        ]
        pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
        second = []
        for j, k in pairs:
            order = [0, 0, 0]
            order[j] += 1
            order[k] += 1
            second.append(mpmath.diff(function, point, tuple(order)))
    return first, second


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@pytest.mark.parametrize(
    "point",
    [
        (1.0, 0.3, 1.0),
        (0.7, -0.6, 2.2),
        (5.0, 4.9, 5.0),
        (0.1, -0.0999, 0.1),
        (3.0, 0.0, 0.25),
    ],
)
def test_closed_form_derivatives_match_mp_diff(act, point):
    """The mpmath closed forms used as references agree with numerical
    differentiation of the independent reference values."""
    reference = REFERENCES[act.name]
    first, second = mp_partials(reference, point)
    gradient_mp, hessian_mp = derivative_references(act, *point)
    for closed, numeric in zip(gradient_mp, first):
        assert abs(closed - numeric) <= mpmath.mpf(10) ** -40 * (1 + abs(numeric))
    for closed, numeric in zip(hessian_mp, second):
        assert abs(closed - numeric) <= mpmath.mpf(10) ** -35 * (1 + abs(numeric))
    for value, numeric in zip(act.pair_gradient(*point), first):
        assert ulp_error(value, numeric) <= MAX_ULP
    for value, numeric in zip(act.pair_hessian(*point), second):
        assert ulp_error(value, numeric) <= MAX_ULP


# -- independent check by quadrature -------------------------------------------------


def relu_quadrature(a, rho, b):
    """<relu(u) relu(v)> with u = sqrt(a) z1, v = sqrt(b)(rho z1 + s z2), by
    nested Gauss-Legendre quadrature in mpmath; the inner integral starts at
    the kink of relu(v), and both are cut at 12 standard deviations, where
    the Gaussian tail is below 1e-31."""
    s = mpmath.sqrt(1 - rho**2)
    sa, sb = mpmath.sqrt(a), mpmath.sqrt(b)

    def inner(z1):
        kink = -rho * z1 / s
        return mpmath.quad(
            lambda z2: sb * (rho * z1 + s * z2) * mpmath.npdf(z2),
            [kink, max(kink, 0) + 12],
            method="gauss-legendre",
        )

    return mpmath.quad(
        lambda z1: sa * z1 * mpmath.npdf(z1) * inner(z1),
        [0, 12],
        method="gauss-legendre",
    )


def erf_quadrature(a, rho, b):
    """<erf(u/sqrt 2) erf(v/sqrt 2)> by adaptive double-precision quadrature
    over the plane (scipy; mpmath is too slow for the erf integrand)."""
    s = math.sqrt(1 - rho**2)

    def integrand(z2, z1):
        u = math.sqrt(a) * z1
        v = math.sqrt(b) * (rho * z1 + s * z2)
        density = math.exp(-(z1 * z1 + z2 * z2) / 2) / (2 * math.pi)
        return math.erf(u / math.sqrt(2)) * math.erf(v / math.sqrt(2)) * density

    value, _ = integrate.dblquad(
        integrand, -12, 12, -12, 12, epsabs=1e-15, epsrel=1e-13
    )
    return value


@pytest.mark.parametrize(
    "a, rho, b", [(1.0, 0.3, 1.0), (2.0, -0.8, 0.5), (0.3, 0.95, 4.0)]
)
def test_pair_against_quadrature(a, rho, b):
    """Agreement to 1e-12 relative (quadrature at 16 digits, and the erf
    quadrature in double precision)."""
    c = float(mpmath.mpf(rho) * mpmath.sqrt(mpmath.mpf(a) * b))
    rho = c / math.sqrt(a * b)
    with mpmath.workdps(16):
        relu = relu_quadrature(mpmath.mpf(a), mpmath.mpf(c) / mpmath.sqrt(a * b), b)
    assert float(ReLU().pair(a, c, b)) == pytest.approx(float(relu), rel=1e-12)
    erf = erf_quadrature(a, rho, b)
    assert float(Erf().pair(a, c, b)) == pytest.approx(erf, rel=1e-12)


# -- the polynomial table of the ReLU cancellation function --------------------------


def test_relu_cancellation_polynomial_accuracy():
    """The polynomial reproduces G(x) = (t - atan t)/(2 pi t**3), x = t**2, on
    [0, 1/4] to 0.05 ulp in exact arithmetic."""
    centre, inv_half_width, c0_hi, c0_lo, tail = _kernels.polynomial_table()
    with mpmath.workdps(40):
        half_width = 1 / mpmath.mpf(inv_half_width)
        assert centre - half_width == 0
        assert centre + half_width == 0.25
        coefficients = [mpmath.mpf(c0_hi) + mpmath.mpf(c0_lo)] + [
            mpmath.mpf(x) for x in tail
        ]
        worst = mpmath.mpf(0)
        for y in mpmath.linspace(-1, 1, 101):
            x = centre + half_width * y
            t = mpmath.sqrt(x)
            if x > 0:
                exact = (t - mpmath.atan(t)) / (2 * mpmath.pi * t**3)
            else:
                exact = 1 / (6 * mpmath.pi)
            approx = mpmath.polyval(coefficients, y, asc=True)
            worst = max(worst, abs(approx / exact - 1))
    assert worst < 0.05 * 2.0**-53


# -- fast path -------------------------------------------------------------------------
#
# Bounds of the error analysis in the docstring of reluspec/_kernels.pyx: the
# fast path is within these of the exact value everywhere in its region.
FAST_PATH_ULP = {"relu": 1.0, "erf": 3.0}
# Relative error of t(v) = 1 - atan(v) / v as each kernel evaluates it, in
# units of u = 2**-53 (same analysis).
TAIL_ERROR_U = {"relu": 0.5, "erf": 3.6}
KINDS = {"relu": _kernels.RELU, "erf": _kernels.ERF}
# Variances of the fast region: [2**-300, 2**300] (ReLU), [2**-120, 2**60]
# (erf).
FAST_MAX_VARIANCE = {"relu": 2.0**300, "erf": 2.0**60}
FAST_MIN_VARIANCE = {"relu": 2.0**-300, "erf": 2.0**-120}


def fast_pair(name, a, c, b):
    return _kernels.fast_pair(KINDS[name], a, c, b)


@pytest.mark.parametrize("name", IDS)
def test_fast_path_region(name):
    top = FAST_MAX_VARIANCE[name]
    low = FAST_MIN_VARIANCE[name]
    inside = [
        (1.0, 0.3, 1.0),
        (low, 0.0, low),
        (top, -0.5 * top, top),
        (low, 0.9 * math.sqrt(low) * math.sqrt(top), top),
        (4.0, 2.0, 1.0),  # rho = 1 with D = 0 exactly
        (4.0, -2.0, 1.0),
    ]
    for a, c, b in inside:
        assert math.isfinite(fast_pair(name, a, c, b)), (a, c, b)

    outside = [
        (low / 2, 0.0, 1.0),
        (1.0, 0.0, 2 * top),
        (0.0, 0.0, 1.0),
        (1.0, 1.0 + CORRELATION_TOLERANCE, 1.0),  # clamped by the careful path
        (1.0, 1.0 + 1e-14, 1.0),  # invalid
        (math.nan, 0.0, 1.0),
        (1.0, math.inf, 1.0),
        (-1.0, 0.0, 1.0),
    ]
    for a, c, b in outside:
        assert math.isnan(fast_pair(name, a, c, b)), (a, c, b)


def test_fast_path_region_per_unit():
    # ReLU leaves |rho| > 1 by rounding to the careful path, erf clamps it.
    assert math.isnan(fast_pair("relu", 1.0, -1.0 - 2**-52, 1.0))
    assert math.isfinite(fast_pair("erf", 1.0, -1.0 - 2**-52, 1.0))

    # erf: a tiny nonzero covariance would make subnormal intermediates.
    assert math.isnan(fast_pair("erf", 1.0, 2.0**-901, 1.0))
    assert math.isfinite(fast_pair("erf", 1.0, 2.0**-900, 1.0))


def dense_correlations():
    """Correlations at the places where the fast path changes formula: rho
    = +-1/sqrt(2) (ReLU: r = |c12|), near +-1 and 0, and a uniform grid."""
    root_half = math.sqrt(0.5)
    near = [root_half * (1 + k * 2.0**-52) for k in range(-8, 9)]
    near += [root_half + d for d in (1e-12, 1e-9, 1e-6, 1e-3, -1e-12, -1e-9, -1e-3)]
    edge = [1 - 10.0**-e for e in np.linspace(1, 16, 31)]
    small = [10.0**-e for e in (1, 3, 8, 20, 100, 300)]
    grid = list(np.linspace(0, 1, 101))
    positive = near + edge + small + grid + [1.0]
    return sorted({s * x for x in positive for s in (1.0, -1.0)})


@pytest.mark.parametrize("name", IDS)
def test_fast_path_dense_sweep_within_bound(name):
    """Dense sweep over correlations for variance pairs across the region."""
    top = FAST_MAX_VARIANCE[name]
    low = FAST_MIN_VARIANCE[name]
    pairs = [
        (1.0, 1.0),
        (1e-2, 1e2),
        (2.0, 0.5),
        (low, low),
        (low, top),
        (top, top / 3),
        (7.5, 1e-5),
    ]
    reference = REFERENCES[name]
    checked = 0
    for a, b in pairs:
        for rho in dense_correlations():
            _, c, _ = covariance(a, rho, b)
            value = fast_pair(name, a, c, b)
            if math.isnan(value):
                continue  # |rho| > 1 by rounding of c: the careful path's case
            checked += 1
            error = ulp_error(value, reference(a, c, b))
            assert error <= FAST_PATH_ULP[name], (a, c, b, error)
    # The sweep must have run the fast path on almost all of its points.
    assert checked > 0.95 * len(pairs) * len(dense_correlations())


def test_erf_fast_path_at_branch():
    """erf switches from atan(v) to 1 - atan(1/v) at |c12| = sqrt(E), that is
    c12**2 = (1 + c11)(1 + c22) / 2; the covariances around it."""
    for a, b in [(4.0, 4.0), (1.5, 30.0), (2.0**20, 2.0**39), (9.0, 3.0)]:
        branch = math.sqrt((1 + a) * (1 + b) / 2)
        for k in range(-20, 21):
            for sign in (1.0, -1.0):
                c = sign * branch * (1 + k * 2.0**-52)
                value = fast_pair("erf", a, c, b)
                assert math.isfinite(value), (a, c, b)
                error = ulp_error(value, erf_reference(a, c, b))
                assert error <= FAST_PATH_ULP["erf"], (a, c, b, error)


def test_erf_fast_path_clamps_rounding():
    """erf clamps |rho| > 1 by rounding to |rho| = 1 in the fast path, like
    the careful path: c12 is replaced by sign(c12) sqrt(c11 c22). The fast
    path covers |rho| - 1 up to 0.9 times CORRELATION_TOLERANCE (8 ulp)."""
    for a, b in [(1.0, 1.0), (3.0, 0.7), (2.0**-100, 2.0**50), (1e10, 1e-9)]:
        root = math.sqrt(a) * math.sqrt(b)
        for k in range(-7, 8):
            for sign in (1.0, -1.0):
                c = sign * root * (1 + k * 2.0**-52)
                value = fast_pair("erf", a, c, b)
                assert math.isfinite(value), (a, c, b)
                error = ulp_error(value, erf_reference(a, c, b))
                assert error <= FAST_PATH_ULP["erf"], (a, c, b, error)


@pytest.mark.parametrize("name", IDS)
@settings(max_examples=200)
@given(
    exponents=st.tuples(st.floats(-300, 300), st.floats(-300, 300)),
    rho=correlations,
)
def test_fast_path_random_within_bound(name, exponents, rho):
    top = math.log2(FAST_MAX_VARIANCE[name])
    bottom = math.log2(FAST_MIN_VARIANCE[name])
    a, b = (2.0 ** max(bottom, min(e, top)) for e in exponents)
    a, c, b = covariance(a, rho, b)
    value = fast_pair(name, a, c, b)
    assume(not math.isnan(value))  # |rho| > 1 by rounding, or erf's tiny c12
    assert ulp_error(value, REFERENCES[name](a, c, b)) <= FAST_PATH_ULP[name]


@pytest.mark.parametrize("name", IDS)
def test_fast_path_tail_accuracy(name):
    """t(v) = 1 - atan(v)/v from the polynomial, against mpmath on a dense
    grid of v in [0, 1] (the relative error of t enters the results)."""
    grid = np.concatenate([np.linspace(0, 1, 4001), 10.0 ** np.linspace(-9, 0, 400)])
    worst = mpmath.mpf(0)
    with mpmath.workdps(40):
        for v in grid:
            t, t_lo = _kernels.atan_tail(KINDS[name], float(v))
            if v == 0:
                assert t == 0
                assert t_lo == 0
                continue
            exact = 1 - mpmath.atan(v) / v
            worst = max(worst, abs((mpmath.mpf(t) + t_lo) / exact - 1))
    assert worst <= TAIL_ERROR_U[name] * 2.0**-53


def bits(x):
    return np.asarray(x, dtype=np.float64).view(np.int64)


def mixed_covariances(n, seed):
    """Covariances inside the fast region and, at random positions, outside
    it: exact correlation +-1 with rounding, zero and extreme variances."""
    rng = np.random.default_rng(seed)
    a = 10.0 ** rng.uniform(-3, 3, n)
    b = 10.0 ** rng.uniform(-3, 3, n)
    special = rng.choice(n, size=n // 20, replace=False)
    a[special[::3]] = 0.0
    a[special[1::3]] = 1e-310
    b[special[2::3]] = 1e300
    rho = rng.uniform(-1, 1, n)
    edge = rng.random(n) < 0.1
    rho[edge] = np.sign(rho[edge])
    c = rho * np.sqrt(a) * np.sqrt(b)
    return a, c, b


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
def test_array_and_scalar_bits_agree(act):
    """The vectorised loop, strided and broadcast inputs, single calls from
    Python and the fast path compiled for the baseline return the same bits."""
    n = 1000  # several blocks and a partial one
    a, c, b = mixed_covariances(n, seed=7)
    values = act.pair(a, c, b)
    scalar = np.array([act.pair(*map(float, abc)) for abc in zip(a, c, b)])
    assert np.array_equal(bits(values), bits(scalar))
    strided = act.pair(np.repeat(a, 2)[::2], np.repeat(c, 2)[::2], np.repeat(b, 2)[::2])
    assert np.array_equal(bits(strided), bits(values))
    out = np.empty(2 * n)
    assert _kernels.pair(act._kind, a, c, b, out[::2]) == -1
    assert np.array_equal(bits(out[::2]), bits(values))
    rho = np.linspace(-1, 1, 501)
    assert np.array_equal(bits(act.unit_pair(rho)), bits(act.pair(1.0, rho, 1.0)))
    fast = np.array([_kernels.fast_pair(act._kind, *x) for x in zip(a, c, b)])
    used = ~np.isnan(fast)
    if _kernels.instruction_set()[1]:
        assert used.sum() > n // 2
        assert np.array_equal(bits(fast[used]), bits(values[used]))


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
def test_instruction_sets_agree_bitwise(act):
    """Every compiled variant that takes the fast path returns the same bits,
    and the variants without it stay within 4 ulp."""
    a, c, b = mixed_covariances(600, seed=11)
    current = _kernels.instruction_set()[0]
    results = {}
    try:
        for name in _kernels.available_instruction_sets():
            _kernels._select_instruction_set(name)
            results[name] = (act.pair(a, c, b), _kernels.instruction_set()[1])
    finally:
        _kernels._select_instruction_set(current)
    fast = [values for values, uses_fast_path in results.values() if uses_fast_path]
    for values in fast[1:]:
        assert np.array_equal(bits(values), bits(fast[0]))
    reference = REFERENCES[act.name]
    for values, uses_fast_path in results.values():
        if not uses_fast_path:
            for i in range(0, len(a), 7):
                assert ulp_error(values[i], reference(a[i], c[i], b[i])) <= MAX_ULP


def test_select_instruction_set_rejects_unknown_name():
    with pytest.raises(ValueError, match="not available"):
        _kernels._select_instruction_set("sse9")


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
def test_error_index_beyond_first_block(act):
    """An invalid entry deep in a strided array is reported at its index."""
    c12 = np.zeros(1000)
    c12[777] = 3.0
    with pytest.raises(ValueError, match=r"at index \(777,\)"):
        act.pair(np.ones(2000)[::2], c12, 1.0)
