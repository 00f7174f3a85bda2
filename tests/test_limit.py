"""Tests of the K -> infinity analysis (reluspec.analysis.limit).

The references are independent of the scaled theory. Fixed-K values come
from reluspec.analysis.solve and from mpmath solves in the original order
parameters. Limits come from mpmath closed forms of the limiting free energy
f_0, and the leading corrections from the normal form near the branch point
(derived in docs/large_k.md).
"""

import logging
import math
import warnings

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reluspec import cli
from reluspec.analysis import SpecializationProblem, phase_diagram, solve
from reluspec.analysis import limit as L
from reluspec.analysis.diagram import PhaseDiagram

PI = math.pi


@pytest.fixture(scope="module")
def curves():
    """Critical curves of both activations from K = infinity to K = 3."""
    return {
        (activation, kind): L.trace_critical_curve(activation, kind, eps_max=0.34)
        for activation in ("relu", "erf")
        for kind in L.CRITICAL_KINDS
    }


def mp_nonlinear(name, x):
    if name == "relu":
        return (mpmath.sqrt(1 - x * x) + x * mpmath.asin(x) - 1) / (2 * mpmath.pi)
    return 2 / mpmath.pi * mpmath.asin(x / 2) - x / mpmath.pi


def mp_nonlinear_slope(name, x):
    if name == "relu":
        return mpmath.asin(x) / (2 * mpmath.pi)
    return 2 / (mpmath.pi * mpmath.sqrt(4 - x * x)) - 1 / mpmath.pi


def mp_f0_slope(name, d, alpha):
    return d / (1 - d * d) - alpha * mp_nonlinear_slope(name, d)


def mp_f0(name, d, alpha):
    return (
        alpha * (mp_nonlinear(name, 1) - mp_nonlinear(name, d))
        - mpmath.log(1 - d * d) / 2
    )


# -- states at K = infinity ------------------------------------------------------------


@pytest.mark.parametrize(("name", "alpha"), [("relu", 10.0), ("erf", 100.0)])
def test_limit_states_match_mpmath(name, alpha):
    states = L.limit_states(name, alpha)
    with mpmath.workdps(30):
        for state in states:
            if state.d == 0.0:
                root = mpmath.mpf(0)
            else:
                bracket = (mpmath.mpf(state.d) - 1e-6, mpmath.mpf(state.d) + 1e-6)
                root = mpmath.findroot(
                    lambda d: mp_f0_slope(name, d, alpha), bracket, solver="anderson"
                )
            # Brent's method stops at about 1e-16 in d.
            assert state.d == pytest.approx(float(root), abs=2e-15)
            error = mp_nonlinear(name, 1) - mp_nonlinear(name, root)
            assert state.generalization_error == pytest.approx(float(error), rel=1e-14)
        a = 0.25 if name == "relu" else 1 / PI
        for state in states:
            assert state.b == pytest.approx(1 / (alpha * a), rel=1e-15)


def test_relu_specialized_states_are_mirror_images():
    states = {s.branch: s for s in L.limit_states("relu", 10.0)}
    above, below = states["specialized R>S"], states["specialized R<S"]
    # N is even for ReLU: same |d|, error and free energy at K = infinity.
    assert below.d == -above.d
    assert below.generalization_error == above.generalization_error
    assert below.free_energy == above.free_energy
    assert above.stable
    assert below.stable
    assert not states["unspecialized"].stable


def test_relu_has_no_specialized_state_below_two_pi():
    names = [s.branch for s in L.limit_states("relu", 6.0)]
    assert names == ["unspecialized"]


# -- finite-K states against the limit -------------------------------------------------


@pytest.mark.parametrize(("name", "alpha"), [("relu", 10.0), ("erf", 100.0)])
def test_followed_states_match_double_precision_solve(name, alpha):
    followed = L.follow_states(name, alpha, [10])
    problem = SpecializationProblem(name, 10)
    for rows in followed.values():
        state = rows[0]
        u = problem.stationary_point(np.array(state.order_parameters), alpha)
        # Newton in (R, S, C) from the scaled state stays there to rounding.
        np.testing.assert_allclose(u, state.order_parameters, atol=1e-12)
        assert problem.n_unstable(u, alpha) == state.n_unstable
        assert problem.generalization_error(u) == pytest.approx(
            state.generalization_error, abs=1e-15
        )


@pytest.mark.parametrize(("name", "alpha"), [("relu", 10.0), ("erf", 100.0)])
def test_finite_K_errors_converge_at_predicted_rate(name, alpha):
    # The finite-K errors, solved in (R, S, C) in mpmath, minus the limit and
    # the predicted first-order correction e1 / K, must be O(1/K^2); the
    # bound scales the remainder seen at K = 100 by (100 / K)^2 with a
    # factor 2 of margin for the next order.
    states = L.limit_states(name, alpha)
    Ks = [100, 1000, 10000]
    followed = L.follow_states(name, alpha, Ks, states)
    for state in states:
        e0, e1 = L.generalization_error_expansion(name, state)
        remainders = []
        for scaled in followed[state.branch]:
            value = L.finite_K_state(
                name, scaled.K, alpha, scaled.order_parameters, dps=30
            )[3]
            remainders.append(float(value - e0 - mpmath.mpf(e1) / scaled.K))
        for K, remainder in zip(Ks[1:], remainders[1:]):
            assert abs(remainder) <= 2 * abs(remainders[0]) * (100 / K) ** 2, (
                state.branch
            )


def solve_endpoint(name, K, alpha):
    """Return ``branch name -> (R, S, C, eps_g)`` of every state at ``alpha``
    from :func:`solve` over ``(alpha / 2, alpha)``, read at its upper end."""
    result = solve(SpecializationProblem(name, K), alpha=(alpha / 2, alpha))
    states = {}
    for branch in result.branches:
        i = int(np.argmin(np.abs(branch.alpha - alpha)))
        assert branch.alpha[i] == pytest.approx(alpha, rel=1e-12)
        states[branch.name] = (
            branch.R[i],
            branch.S[i],
            branch.C[i],
            branch.generalization_error[i],
        )
    return states


@pytest.mark.parametrize(("alpha", "Ks"), [(3000.0, [10]), (1e4, [10, 20, 100])])
def test_relu_large_alpha_table_matches_solve(alpha, Ks):
    # At K = 10 and these alpha the R<S state has C < 0 and R - S < -1
    # (inside the domain 1 - C - (R - S)^2 > 0), which the continuation in
    # 1/K must follow.
    table = L.convergence_table("relu", alpha=alpha, Ks=Ks)
    assert table.omitted == ()
    values = {(row.quantity, row.K): row.value for row in table.rows}
    for K in Ks[:2]:
        reference = solve_endpoint("relu", K, alpha)
        assert set(reference) == {"unspecialized", "specialized R>S", "specialized R<S"}
        for branch, (_, _, _, error) in reference.items():
            # solve's states are stationary to rounding in double precision.
            # Errors of 1e-16 in (R, S, C) times the Hessian spread (about
            # K alpha) stay below 1e-12 in eps_g.
            assert float(values[(f"eps_g {branch}", K)]) == pytest.approx(
                error, abs=1e-12
            ), (branch, K)
    followed = L.follow_states("relu", alpha, [10])["specialized R<S"][0]
    R, S, C, _ = solve_endpoint("relu", 10, alpha)["specialized R<S"]
    np.testing.assert_allclose(followed.order_parameters, (R, S, C), atol=1e-12)
    assert followed.d < -1.0
    assert C < 0.0


def test_cli_limit_large_alpha_prints_table(capsys):
    code = cli.main(["limit", "--alpha", "1e4", "--K", "10,100"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    for K in (10, 100):
        assert any(
            line.startswith("eps_g specialized R<S") and line.split()[3] == str(K)
            for line in lines
        ), K
    assert "left out" not in out


def test_relu_states_near_two_pi_left_out(caplog):
    # At alpha = 2 pi + 0.001 the R>S fold at K = 10 lies above alpha
    # (alpha_s(10) - 2 pi = 0.0039, checked below from the traced curve), so
    # neither specialised state of K = infinity reaches K = 10.
    alpha = 2 * PI + 0.001
    fold = L.trace_critical_curve("relu", "fold", eps_max=0.1).solve_at(10)
    assert fold.alpha > alpha
    with pytest.raises(L.LimitError, match=r"specialized R>S at alpha = 6\.28"):
        L.follow_states("relu", alpha, [10, 100])

    with caplog.at_level(logging.WARNING, logger="reluspec.analysis.limit"):
        table = L.convergence_table("relu", alpha=alpha, Ks=[10, 100])
    omitted = {(quantity, K) for quantity, K, _ in table.omitted}
    assert omitted == {
        ("eps_g specialized R>S", 10),
        ("eps_g specialized R<S", 10),
    }
    for _, _, reason in table.omitted:
        assert "alpha = 6.28" in reason
        assert "to eps = 0.1 (K = 10)" in reason

    present = {(row.quantity, row.K) for row in table.rows}
    assert ("eps_g specialized R>S", 100) in present
    assert ("eps_g specialized R<S", 100) in present
    assert ("eps_g unspecialized", 10) in present
    assert ("eps_g R<S - eps_g R>S", 10) not in present
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("eps_g specialized R>S left out at K = 10" in m for m in warned)
    assert "eps_g specialized R<S at K = 10 left out" in table.table()

    # The row left out does exist at K = 100: solve finds both there.
    reference = solve_endpoint("relu", 100, alpha)
    values = {(row.quantity, row.K): row.value for row in table.rows}
    for branch in ("specialized R>S", "specialized R<S"):
        assert float(values[(f"eps_g {branch}", 100)]) == pytest.approx(
            reference[branch][3], abs=1e-12
        )


def test_state_passing_branch_point_is_noted():
    # Between K = infinity and K = 20 the state that tends to R<S at
    # alpha = 2 pi + 0.001 passes d = 0: its row is kept with a note.
    table = L.convergence_table("relu", alpha=2 * PI + 0.001, Ks=[20, 100])
    assert table.omitted == ()
    assert len(table.remarks) == 1
    assert table.remarks[0].startswith("eps_g specialized R<S at K = 20")
    assert table.remarks[0] in table.table()


@pytest.mark.parametrize("name", ["relu", "erf"])
def test_small_alpha_table_has_no_runtime_warning(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = L.convergence_table(name, alpha=0.1, Ks=[10, 100])
    for row in table.rows:
        if not row.quantity.startswith("eps_g"):
            continue
        reference = solve(SpecializationProblem(name, row.K), alpha=(0.1, 1.0))
        branch = reference.branches[0]
        assert branch.name == "unspecialized"
        assert branch.alpha[0] == 0.1
        # solve's state is stationary to rounding; eps_g is of order 0.1.
        assert float(row.value) == pytest.approx(
            branch.generalization_error[0], abs=1e-13
        ), row.K
    notes = table.notes()
    assert any("K alpha = 1 at K = 10" in note for note in notes)


def test_large_K_alpha_table_has_no_note():
    table = L.convergence_table("relu", alpha=10.0, Ks=[10, 100])
    assert table.notes() == []
    assert "# note" not in table.table()


@settings(max_examples=25)
@given(
    alpha=st.one_of(st.floats(0.01, 6.2), st.floats(6.4, 1e5)),
    K=st.sampled_from([3, 10, 100]),
)
def test_followed_states_are_stationary_without_warnings(alpha, K):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        followed = L.follow_states("relu", alpha, [K])
    problem = SpecializationProblem("relu", K)
    for rows in followed.values():
        u = np.array(rows[0].order_parameters)
        # Newton in (R, S, C) from the followed state moves it by rounding
        # only (at most 2e-15 over 400 random draws of alpha and K).
        stationary = problem.stationary_point(u, alpha)
        np.testing.assert_allclose(stationary, u, atol=1e-12)


# -- critical curves against fixed-K solves --------------------------------------------


@pytest.mark.parametrize(
    ("name", "K", "alpha_range"),
    [("relu", 3, (5.5, 7.0)), ("relu", 5, (5.5, 7.0)), ("erf", 5, (30.0, 70.0))],
)
def test_curves_match_fixed_K_solve(curves, name, K, alpha_range):
    result = solve(SpecializationProblem(name, K), alpha=alpha_range)
    found = {}
    for point in result.critical_points:
        if point.kind in L.CRITICAL_KINDS and point.kind not in found:
            found[point.kind] = point
    assert set(found) == set(L.CRITICAL_KINDS)
    for kind, point in found.items():
        value = curves[(name, kind)].solve_at(K)
        # The solve reports its own error estimate; the scaled system is
        # exact to a few ulp.
        tolerance = max(10 * point.alpha_error, 1e-13 * point.alpha)
        assert value.alpha == pytest.approx(point.alpha, abs=tolerance), kind


def test_erf_branch_and_fold_match_solve_at_K3(curves):
    result = solve(SpecializationProblem("erf", 3), alpha=(20.0, 50.0))
    for kind in ("branch_point", "fold"):
        point = next(p for p in result.critical_points if p.kind == kind)
        value = curves[("erf", kind)].solve_at(3)
        assert value.alpha == pytest.approx(point.alpha, abs=10 * point.alpha_error)


def test_curves_reach_their_ends(curves):
    for (name, kind), curve in curves.items():
        assert curve.eps[0] == 0.0
        assert curve.eps[-1] == pytest.approx(0.34), (name, kind)
        assert curve.branch.status == "parameter_bound"


def test_branch_point_curve_reaches_K2():
    curve = L.trace_critical_curve("relu", "branch_point")
    assert curve.eps[-1] == 0.5
    result = solve(SpecializationProblem("relu", 2), alpha=(5.0, 7.0))
    point = next(p for p in result.critical_points if p.kind == "branch_point")
    assert curve.solve_at(2).alpha == pytest.approx(
        point.alpha, abs=10 * point.alpha_error
    )


# -- limit values and leading corrections ----------------------------------------------


def test_relu_limits_and_corrections_closed_form(curves):
    # Limits 2 pi; corrections from the normal form near the branch point:
    # alpha_c = 2 pi + (4 - pi)/K^2, the fold 3 pi/20 and the equal-F point
    # 2 pi/15 below it at order 1/K^2 (docs/large_k.md).
    expected = {
        "branch_point": 4 - PI,
        "fold": 4 - PI - 3 * PI / 20,
        "first_order": 4 - PI - 2 * PI / 15,
    }
    for kind, coefficient in expected.items():
        a0, a1, a2 = curves[("relu", kind)].expansion()
        assert a0 == pytest.approx(2 * PI, rel=1e-15)
        # Central differences at h = 1e-3 with one Richardson step: error
        # h^4 from truncation and 1e-16 / h^2 = 1e-10 from rounding.
        assert abs(a1) < 1e-9
        assert a2 == pytest.approx(coefficient, abs=1e-8), kind


def test_relu_critical_d_normal_form(curves):
    # d at the fold and at the equal-F point: 3/10 and 2/5 of 1/K.
    for kind, ratio in (("fold", 0.3), ("first_order", 0.4)):
        value = curves[("relu", kind)].solve_at(1e6)
        assert value.d * 1e6 == pytest.approx(ratio, rel=1e-5)


def test_erf_branch_point_grows_like_K(curves):
    a0, a1, a2 = curves[("erf", "branch_point")].expansion()
    # alpha_c / K = 4 pi (1 - 1/(4 K^2)) + O(1/K^3): m = 1 - mu/K^2 with
    # mu = 1/8 and I''(x)/x = (1 + 3x^2/8)/(4 pi) + O(x^4).
    assert a0 == pytest.approx(4 * PI, rel=1e-15)
    assert abs(a1) < 1e-9
    assert a2 == pytest.approx(-PI, abs=1e-8)
    value = curves[("erf", "branch_point")].solve_at(math.inf)
    assert math.isinf(value.alpha)


def test_erf_fold_and_equal_f_limits_match_mpmath(curves):
    name = "erf"
    with mpmath.workdps(30):

        def slope(d, alpha):
            return mpmath.diff(lambda t: mp_f0(name, t, alpha), d)

        def curvature(d, alpha):
            return mpmath.diff(lambda t: mp_f0(name, t, alpha), d, 2)

        fold = mpmath.findroot(
            lambda d, a: [slope(d, a), curvature(d, a)],
            (mpmath.mpf("0.6"), mpmath.mpf(61)),
        )
        equal = mpmath.findroot(
            lambda d, a: [slope(d, a), mp_f0(name, d, a) - mp_f0(name, 0, a)],
            (mpmath.mpf("0.75"), mpmath.mpf(69)),
        )
    # The defining systems at eps = 0 are solved to a few ulp.
    assert curves[(name, "fold")].limit == pytest.approx(float(fold[1]), rel=1e-14)
    assert curves[(name, "fold")].d[0] == pytest.approx(float(fold[0]), rel=1e-12)
    assert curves[(name, "first_order")].limit == pytest.approx(
        float(equal[1]), rel=1e-14
    )
    assert curves[(name, "first_order")].d[0] == pytest.approx(
        float(equal[0]), rel=1e-12
    )


# -- convergence table -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tables():
    Ks = (100, 1000, 10**4, 10**5)
    return {name: L.convergence_table(name, Ks=Ks, dps=30) for name in ("relu", "erf")}


def test_fitted_exponents(tables):
    expected = {
        "relu": {"alpha_c": 2, "alpha_s": 2, "alpha_t": 2, "eps_g": 1},
        "erf": {"alpha_c": 2, "alpha_s": 1, "alpha_t": 1, "eps_g": 1},
    }
    for name, table in tables.items():
        last = {}
        for row in table.rows:
            last[row.quantity] = row
        for quantity, row in last.items():
            exponent = expected[name][quantity.split()[0]]
            # At K = 1e5 the next order changes the local exponent by about
            # 1e-5 / log(10) relative to the leading term.
            assert row.exponent == pytest.approx(exponent, abs=2e-3), (name, quantity)


def test_finite_K_critical_values_match_prediction(tables):
    # distance * K^p must approach the predicted coefficient like 1/K.
    for table in tables.values():
        for row in table.rows:
            _, exponent, coefficient = table.limits[row.quantity]
            scaled = float(row.distance) * row.K**exponent
            assert scaled == pytest.approx(coefficient, rel=200 / row.K, abs=1e-12), (
                row.quantity,
                row.K,
            )


def test_richardson_estimates_approach_limit(tables):
    for table in tables.values():
        for row in table.rows:
            if row.richardson is None:
                continue
            limit, exponent, coefficient = table.limits[row.quantity]
            # The extrapolation removes the leading term; what is left is the
            # next order, below |coefficient| / K^exponent.
            bound = max(abs(coefficient), 1e-3) / row.K**exponent
            assert abs(float(row.richardson - limit)) < bound, (row.quantity, row.K)


def test_relu_error_difference_vanishes_like_one_over_K(tables):
    rows = [r for r in tables["relu"].rows if r.quantity == "eps_g R<S - eps_g R>S"]
    assert [r.K for r in rows] == [100, 1000, 10**4, 10**5]
    values = [float(r.value) for r in rows]
    assert all(v > 0 for v in values)
    assert values[-1] * 1e5 == pytest.approx(
        tables["relu"].limits[rows[0].quantity][2], rel=1e-3
    )


def test_table_text_and_csv(tables, tmp_path):
    text = tables["relu"].table()
    assert "alpha_c (branch point)" in text
    assert "eps_g R<S - eps_g R>S" in text
    dps = tables["relu"].dps
    assert f"at {dps} digits, shown to 17 (the CSV holds all)" in text
    path = tmp_path / "table.csv"
    csv_text = tables["erf"].to_csv(path)
    assert path.read_text() == csv_text
    assert csv_text.splitlines()[0].startswith("quantity,K,value")


# -- mpmath finite-K values against double precision -----------------------------------


def test_finite_K_critical_value_agrees_with_scaled(curves):
    for (name, kind), curve in curves.items():
        start = curve.solve_at(1000)
        alpha, digits = L.finite_K_critical_value(name, kind, 1000, start, dps=30)
        assert digits >= 20
        # The scaled system in double precision is exact to a few ulp.
        assert float(alpha) == pytest.approx(start.alpha, rel=1e-14), (name, kind)


# -- diagram and command line ----------------------------------------------------------


def test_phase_diagram_with_infinity(tmp_path):
    diagram = phase_diagram(["relu", "erf"], [math.inf], progress=False)
    relu = {r.kind: r for r in diagram.select("relu")}
    assert relu["branch_point"].alpha == pytest.approx(2 * PI, rel=1e-15)
    assert relu["transition:continuous"].alpha == pytest.approx(2 * PI, rel=1e-15)
    erf = {r.kind: r for r in diagram.select("erf")}
    assert math.isinf(erf["branch_point"].alpha)
    assert erf["transition:first_order"].alpha == erf["first_order"].alpha
    assert erf["transition:first_order"].generalization_error_after < (
        erf["transition:first_order"].generalization_error_before
    )
    loaded = PhaseDiagram.from_json(diagram.to_json())
    assert [r.K for r in loaded.rows] == [math.inf] * len(diagram.rows)
    assert "inf" in diagram.table()


def test_parse_diagram_K_list():
    assert cli.parse_diagram_K_list("2-4,inf") == [2, 3, 4, math.inf]
    assert cli.parse_diagram_K_list("inf") == [math.inf]
    with pytest.raises(Exception, match="not an integer"):
        cli.parse_diagram_K_list("2,infinite")


def test_cli_limit(capsys, tmp_path):
    path = tmp_path / "limit.csv"
    code = cli.main(
        ["limit", "--activation", "relu", "--K", "10,100,1000", "--csv", str(path)]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "alpha_c (branch point)" in out
    assert path.exists()
    assert cli.main(["limit", "--K", "2,10"]) == 2


def test_cli_diagram_with_infinity(capsys, tmp_path):
    figure = tmp_path / "diagram.png"
    code = cli.main(
        ["diagram", "--activation", "relu", "--K", "3,inf", "-q", "--plot", str(figure)]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "inf" in out
    assert figure.stat().st_size > 0


def test_cli_plot_saved_diagram_with_infinity(tmp_path):
    saved = tmp_path / "diagram.json"
    figure = tmp_path / "diagram.pdf"
    assert (
        cli.main(
            ["diagram", "--activation", "erf", "--K", "inf", "-q", "--json", str(saved)]
        )
        == 0
    )
    assert cli.main(["plot", str(saved), "--plot", str(figure)]) == 0
    assert figure.stat().st_size > 0


def test_invalid_arguments():
    with pytest.raises(ValueError, match="kind"):
        L.trace_critical_curve("relu", "cusp")
    with pytest.raises(ValueError, match="eps_max"):
        L.trace_critical_curve("relu", "fold", eps_max=0.0)
    with pytest.raises(ValueError, match="Ks"):
        L.convergence_table("relu", Ks=(2, 10))
    with pytest.raises(ValueError, match="alpha"):
        L.limit_states("relu", -1.0)
    with pytest.raises(ValueError, match="K"):
        L.follow_states("relu", 10.0, [1.5])


def test_solve_at_does_not_depend_on_earlier_solves():
    """solve_at starts from the traced points and forms its own Jacobian, so
    that solving K in another order gives the same bits."""
    curve = L.trace_critical_curve("relu", "first_order", eps_max=0.05)
    Ks = list(range(20, 40))
    forward = {K: curve.solve_at(K).alpha for K in Ks}
    backward = {K: curve.solve_at(K).alpha for K in reversed(Ks)}
    assert forward == backward


@pytest.mark.parametrize("ds", [0.0, -0.01, math.nan, math.inf, "x"])
def test_trace_rejects_invalid_first_step(ds):
    with pytest.raises(ValueError, match=r"ds = .* is invalid: it must be a number > 0"):
        L.trace_critical_curve("relu", "fold", eps_max=0.05, ds=ds)
