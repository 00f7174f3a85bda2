"""Tests of the activation interface: lookup, the functions themselves, the
unit-variance functions of the correlation and the mpmath versions."""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from reluspec.activations import Activation, Erf, ReLU, activation

ACTIVATIONS = [ReLU(), Erf()]
IDS = ["relu", "erf"]
MAX_ULP = 4.0


def ulp_error(value, reference) -> float:
    value = float(value)
    if mpmath.isinf(reference):
        same = math.isinf(value) and (value > 0) == (reference > 0)
        return 0.0 if same else math.inf
    if reference == 0:
        return 0.0 if value == 0 else math.inf
    return float(abs(mpmath.mpf(value) - reference) / np.spacing(abs(float(reference))))


def unit_reference(name, rho, dps=60):
    """I(1, rho, 1) from the literature forms at high precision."""
    with mpmath.workdps(max(dps, mpmath.mp.dps + 20)):
        rho = mpmath.mpf(rho)
        if name == "relu":
            if rho == -1:
                return mpmath.mpf(0)
            theta = mpmath.acos(rho)
            return (mpmath.sin(theta) + (mpmath.pi - theta) * rho) / (2 * mpmath.pi)
        return 2 / mpmath.pi * mpmath.asin(rho / 2)


correlations = st.one_of(
    st.floats(-1, 1),
    st.floats(-16, 0).map(lambda e: 1 - 10.0**e),
    st.floats(-16, 0).map(lambda e: -1 + 10.0**e),
    st.sampled_from([-1.0, 0.0, 1.0]),
)


# -- lookup and the functions ----------------------------------------------------------


def test_lookup_by_name():
    assert isinstance(activation("relu"), ReLU)
    assert isinstance(activation(" ERF "), Erf)
    assert activation("relu") == ReLU()
    assert hash(activation("erf")) == hash(Erf())
    assert repr(ReLU()) == "ReLU()"


def test_lookup_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="valid names are: erf, relu"):
        activation("tanh")


def test_activations_implement_interface():
    for act in ACTIVATIONS:
        assert isinstance(act, Activation)


def test_relu_function_and_derivative():
    x = np.array([-2.0, -0.0, 0.0, 1e-300, 3.5])
    np.testing.assert_array_equal(ReLU()(x), [0.0, 0.0, 0.0, 1e-300, 3.5])
    np.testing.assert_array_equal(ReLU().derivative(x), [0.0, 0.0, 0.0, 1.0, 1.0])


def test_erf_function_and_derivative():
    x = np.linspace(-5, 5, 41)
    expected = [math.erf(v / math.sqrt(2)) for v in x]
    np.testing.assert_allclose(Erf()(x), expected, rtol=1e-15, atol=1e-16)
    # Derivative against mpmath differentiation of erf(x / sqrt(2)).
    with mpmath.workdps(30):
        numeric = [
            float(mpmath.diff(lambda t: mpmath.erf(t / mpmath.sqrt(2)), v)) for v in x
        ]
    np.testing.assert_allclose(Erf().derivative(x), numeric, rtol=1e-14)


# -- means -----------------------------------------------------------------------------


@pytest.mark.parametrize("variance", [0.0, 1e-300, 0.37, 1.0, 4.0, 1e300])
def test_mean_against_integral(variance):
    """<relu(u)> = sqrt(c11) * int_0^inf z phi(z) dz, by quadrature; erf: odd."""
    with mpmath.workdps(30):
        integral = mpmath.quad(lambda z: z * mpmath.npdf(z), [0, mpmath.inf])
        expected = mpmath.sqrt(variance) * integral
    assert ulp_error(ReLU().mean(variance), expected) <= MAX_ULP
    # The quadrature at 30 digits is accurate to about 1e-28.
    assert abs(ReLU().mean_mp(variance) - expected) <= 1e-25 * expected
    assert Erf().mean(variance) == 0.0
    assert Erf().mean_derivative(variance) == 0.0


def test_mean_derivative_against_mp_diff():
    for variance in (1e-10, 0.37, 2.0, 1e10):
        with mpmath.workdps(40):
            numeric = mpmath.diff(lambda v: mpmath.sqrt(v / (2 * mpmath.pi)), variance)
        assert ulp_error(ReLU().mean_derivative(variance), numeric) <= MAX_ULP
    assert ReLU().mean_derivative(0.0) == math.inf


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@pytest.mark.parametrize("bad", [-1.0, math.nan, -math.inf])
def test_mean_rejects_invalid_variance(act, bad):
    with pytest.raises(ValueError, match="variance c11"):
        act.mean(bad)
    with pytest.raises(ValueError, match="variance c11"):
        act.mean_mp(bad)


# -- unit-variance functions -----------------------------------------------------------


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@settings(max_examples=100)
@given(rho=correlations)
def test_unit_pair_within_4_ulp(act, rho):
    assert ulp_error(act.unit_pair(rho), unit_reference(act.name, rho)) <= MAX_ULP
    assert act.unit_pair(rho) == act.pair(1.0, rho, 1.0)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@settings(max_examples=100)
@given(rho=correlations)
def test_unit_pair_derivatives_within_4_ulp(act, rho):
    for order in (1, 2, 3):
        reference = act.unit_pair_derivative_mp(rho, order, dps=40)
        assert ulp_error(act.unit_pair_derivative(rho, order), reference) <= MAX_ULP


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@pytest.mark.parametrize("rho", [-0.99, -0.5, 0.0, 0.3, 0.9, 0.999])
def test_unit_pair_derivatives_match_mp_diff(act, rho):
    """The closed forms of orders 1 to 3 against numerical differentiation of
    the independent reference."""
    with mpmath.workdps(50):
        for order in (1, 2, 3):
            numeric = mpmath.diff(lambda r: unit_reference(act.name, r), rho, order)
            closed = act.unit_pair_derivative_mp(rho, order, dps=50)
            assert abs(closed - numeric) <= mpmath.mpf(10) ** -30 * (1 + abs(numeric))


def test_relu_unit_derivatives_at_correlation_one():
    relu = ReLU()
    assert relu.unit_pair_derivative(1.0, 1) == 0.5
    assert relu.unit_pair_derivative(-1.0, 1) == 0.0
    assert relu.unit_pair_derivative(1.0, 2) == math.inf
    assert relu.unit_pair_derivative(-1.0, 2) == math.inf
    assert relu.unit_pair_derivative(1.0, 3) == math.inf
    assert relu.unit_pair_derivative(-1.0, 3) == -math.inf
    assert relu.unit_pair_derivative_mp(-1.0, 3) == -mpmath.inf


def test_erf_unit_values_in_closed_form():
    erf = Erf()
    assert erf.unit_pair(1.0) == pytest.approx(1 / 3, rel=2e-16)
    assert erf.unit_pair_derivative(0.0, 1) == pytest.approx(1 / math.pi, rel=2e-16)
    assert erf.unit_pair_derivative(1.0, 2) == pytest.approx(
        2 / math.pi / 3**1.5, rel=4e-16
    )


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@pytest.mark.parametrize("order", [0, 4, 1.5, "2"])
def test_unit_pair_derivative_rejects_order(act, order):
    with pytest.raises(ValueError, match="valid orders are 1, 2, 3"):
        act.unit_pair_derivative(0.5, order)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@settings(max_examples=100)
@given(
    delta=st.one_of(
        st.floats(-300, 0.3).map(lambda e: 10.0**e),
        st.floats(0, 2),
        st.sampled_from([0.0, 0.5, 0.54, 1.0, 2.0]),
    )
)
def test_unit_pair_deficit_within_4_ulp(act, delta):
    delta = min(delta, 2.0)
    # 700 digits resolve 1 - delta exactly for delta >= 1e-300.
    with mpmath.workdps(700):
        rho = 1 - mpmath.mpf(delta)
        reference = unit_reference(act.name, 1, 700) - unit_reference(
            act.name, rho, 700
        )
    assert ulp_error(act.unit_pair_deficit(delta), reference) <= MAX_ULP


def test_unit_pair_deficit_small_delta_relative_precision():
    """Near perfect learning the deficit keeps its relative precision, where
    the difference I(1) - I(1 - delta) of doubles would keep none."""
    for act in ACTIVATIONS:
        for delta in (1e-12, 1e-100, 5e-324):
            reference = act.unit_pair_deficit_mp(delta, dps=40)
            assert ulp_error(act.unit_pair_deficit(delta), reference) <= MAX_ULP


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
def test_unit_pair_deficit_clamps_rounding_and_rejects_rest(act):
    assert act.unit_pair_deficit(-1e-16) == 0.0
    assert act.unit_pair_deficit(2 + 1e-16) == act.unit_pair_deficit(2.0)
    for bad in (-1e-10, 2.1, math.nan):
        with pytest.raises(ValueError, match="delta"):
            act.unit_pair_deficit(bad)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@settings(max_examples=100)
@given(rho=st.one_of(st.floats(-1, 1), st.floats(-300, 0).map(lambda e: 10.0**e)))
def test_unit_pair_nonlinear_within_4_ulp(act, rho):
    with mpmath.workdps(700):
        slope = act.unit_pair_derivative_mp(0, 1, dps=700)
        reference = (
            unit_reference(act.name, rho, 700)
            - unit_reference(act.name, 0, 700)
            - slope * mpmath.mpf(rho)
        )
    assert ulp_error(act.unit_pair_nonlinear(rho), reference) <= MAX_ULP


# -- array handling --------------------------------------------------------------------


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
def test_broadcasting_and_scalar_results(act):
    c11 = np.array([[1.0], [2.0]])
    c12 = np.array([0.1, -0.2, 0.3])
    values = act.pair(c11, c12, 1.5)
    assert values.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert values[i, j] == act.pair(float(c11[i, 0]), float(c12[j]), 1.5)
    assert isinstance(act.pair(1.0, 0.5, 1.0), np.float64)
    assert isinstance(act.pair(np.float64(1.0), 0, 1), np.float64)
    assert act.pair(np.array(1.0), 0.5, 1.0).shape == ()
    gradient = act.pair_gradient(c11, c12, 1.5)
    hessian = act.pair_hessian(c11, c12, 1.5)
    assert len(gradient) == 3 and all(g.shape == (2, 3) for g in gradient)
    assert len(hessian) == 6 and all(h.shape == (2, 3) for h in hessian)
    rho = np.linspace(-1, 1, 7).reshape(7, 1)
    assert act.unit_pair_derivative(rho, 2).shape == (7, 1)
    assert act.unit_pair(np.empty((0, 3))).shape == (0, 3)


def test_array_error_names_index():
    with pytest.raises(ValueError, match=r"rho = 1\.5 at index \(2,\)"):
        ReLU().unit_pair(np.array([0.0, 0.5, 1.5]))


# -- mpmath versions -------------------------------------------------------------------


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
def test_mp_versions_converge_with_precision(act):
    """Results at 30 digits agree with those at 80 digits to 30 digits."""
    for args in [(1.0, 0.3, 2.0), (0.5, -0.49999, 0.5), ("0.1", "-0.0999", "0.1")]:
        low = act.pair_mp(*args, dps=30)
        high = act.pair_mp(*args, dps=80)
        assert abs(low - high) <= mpmath.mpf(10) ** -29 * abs(high)
        for low_d, high_d in zip(
            act.pair_hessian_mp(*args, dps=30), act.pair_hessian_mp(*args, dps=80)
        ):
            assert abs(low_d - high_d) <= mpmath.mpf(10) ** -29 * abs(high_d)
        assert mpmath.mp.dps == 15  # the working precision is restored


def test_relu_mp_keeps_precision_near_minus_one():
    """At rho = -1 + 1e-40 the two terms cancel to 60 digits; the guard digits
    keep the 50 requested."""
    with mpmath.workdps(60):
        rho = mpmath.mpf("-1") + mpmath.mpf("1e-40")
    value = ReLU().pair_mp(1, rho, 1, dps=50)
    with mpmath.workdps(200):
        theta = mpmath.acos(rho)
        exact = (mpmath.sin(theta) + (mpmath.pi - theta) * rho) / (2 * mpmath.pi)
    assert abs(value / exact - 1) < mpmath.mpf(10) ** -48


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
def test_mp_versions_validate(act):
    with pytest.raises(ValueError, match="correlation|c12"):
        act.pair_mp(1, 1.5, 1)
    with pytest.raises(ValueError, match="dps"):
        act.pair_mp(1, 0.5, 1, dps=0)
    with pytest.raises(ValueError, match="negative variance"):
        act.pair_gradient_mp(-1, 0, 1)
    with pytest.raises(ValueError, match="valid orders"):
        act.unit_pair_derivative_mp(0.5, 5)


def test_monte_carlo_pair_correlation():
    """<g(u) g(v)> from 2 * 10**6 Gaussian samples (fixed seed) agrees with
    the kernel within 5 standard errors."""
    rng = np.random.default_rng(2024)
    a, c, b = 1.3, -0.4, 0.8
    cov = np.array([[a, c], [c, b]])
    u, v = rng.multivariate_normal([0, 0], cov, size=2_000_000).T
    for act in ACTIVATIONS:
        products = act(u) * act(v)
        error = products.std() / math.sqrt(products.size)
        assert abs(products.mean() - act.pair(a, c, b)) < 5 * error
        assert abs(act(u).mean() - act.mean(a)) < 5 * act(u).std() / math.sqrt(u.size)
    assert special.erf(0.0) == 0.0
