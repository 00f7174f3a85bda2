"""Tests of the specialisation analysis: branches, critical points, transitions.

Critical points located by the library are checked against roots of the
defining equations found with mpmath.findroot on an independent closed-form
implementation of the free energy (tests/reference_free_energy.py), and the
equilibrium against brute-force minimisation with scipy.
"""

import csv
import importlib
import io
import json
import logging
import math

import mpmath as mp
import numpy as np
import pytest
import reference_free_energy as ref
from scipy.optimize import minimize

import reluspec as rs
from reluspec.analysis.problem import StationaryPointError
from reluspec.order_parameters import symmetric_matrices
from reluspec.theory.free_energy import free_energy_gradient


@pytest.fixture(scope="module")
def erf2():
    return rs.solve(rs.SpecializationProblem("erf", 2), alpha=(1.0, 60.0))


@pytest.fixture(scope="module")
def erf3():
    return rs.solve(rs.SpecializationProblem("erf", 3), alpha=(1.0, 100.0))


@pytest.fixture(scope="module")
def relu3():
    return rs.solve(rs.SpecializationProblem("relu", 3), alpha=(1.0, 100.0))


def _points(result, kind, branch=None):
    return [
        p
        for p in result.critical_points
        if p.kind == kind and (branch is None or branch in p.branches)
    ]


# -- input validation ----------------------------------------------------------------
@pytest.mark.parametrize("K", [1, 0, -3, 2.5, True, "3"])
def test_problem_rejects_invalid_K(K):
    with pytest.raises(ValueError, match="K"):
        rs.SpecializationProblem("relu", K)


def test_problem_rejects_unknown_activation():
    with pytest.raises(ValueError, match="relu"):
        rs.SpecializationProblem("tanh", 3)


@pytest.mark.parametrize(
    "alpha",
    [
        (5.0, 1.0),
        (0.0, 1.0),
        (-1.0, 2.0),
        (1.0, math.inf),
        (1.0,),
        "1:5",
        (math.nan, 2),
        (1e-300, 10.0),
        (1.0, 1e9),
    ],
)
def test_solve_rejects_invalid_alpha(alpha):
    with pytest.raises(ValueError, match=r"alpha .* 1e-08 <= lo < hi <= 1e\+08"):
        rs.solve(rs.SpecializationProblem("relu", 2), alpha=alpha)


@pytest.mark.parametrize("name", ["relu", "erf"])
def test_solve_covers_whole_alpha_range(name):
    """At the ends of the accepted range the solve still finds the transition
    of a narrow range, and the learning curve reaches equipartition."""
    K = 3
    narrow = rs.solve(rs.SpecializationProblem(name, K), alpha=(1.0, 60.0))
    wide = rs.solve(rs.SpecializationProblem(name, K), alpha=(1e-8, 1e8))
    assert [t.kind for t in wide.transitions] == [t.kind for t in narrow.transitions]
    for t_wide, t_narrow in zip(wide.transitions, narrow.transitions):
        assert t_wide.alpha == pytest.approx(t_narrow.alpha, rel=1e-10)
    curve = wide.learning_curve
    assert curve.alpha[0] == 1e-8
    assert curve.alpha[-1] == 1e8
    # Equipartition: K N weights at temperature 1/beta carry a training
    # energy of K N / (2 beta), so eps_g -> 1 / (2 alpha). The corrections
    # fall like alpha^(-1/2) and are below 1e-4 from alpha = 1e6 on.
    tail = curve.alpha >= 1e6
    assert np.all(
        np.abs(curve.generalization_error[tail] * curve.alpha[tail] - 0.5) < 1e-3
    )


def test_solve_rejects_low_precision():
    with pytest.raises(ValueError, match="precision"):
        rs.solve(rs.SpecializationProblem("relu", 2), alpha=(1, 2), precision=8)


# -- erf, K = 2: a continuous transition ----------------------------------------------
def test_erf2_has_one_continuous_transition(erf2):
    """Biehl, Schlösser and Ahr (Europhys. Lett. 44, 261, 1998) report a
    continuous specialisation transition for erf with K = 2 near alpha = 23.7."""
    assert [t.kind for t in erf2.transitions] == ["continuous"]
    transition = erf2.transitions[0]
    assert 22.5 < transition.alpha < 25.0
    assert transition.before == "unspecialized"
    assert transition.after == "specialized R>S"


def test_erf2_branch_point_matches_mpmath_root(erf2):
    (point,) = _points(erf2, "branch_point")
    state = point.states["unspecialized"]
    m0 = state["R"] + state["S"]
    root = ref.branch_point("erf", 2, m0, state["C"], point.alpha)
    # The defining system is regular, so Newton in double precision reaches
    # the root to a few ulp times its condition number; 1e-12 is generous.
    assert point.alpha == pytest.approx(float(root[2]), rel=1e-12)
    assert point.alpha_error < 1e-10 * point.alpha


def test_erf2_has_no_R_below_S_branch(erf2):
    names = [b.name for b in erf2.branches]
    assert "unspecialized" in names
    assert "specialized R>S" in names
    assert not any("R<S" in name for name in names)


# -- erf, K = 3: a first-order transition ----------------------------------------------
def test_erf3_transition_is_first_order(erf3):
    kinds = [t.kind for t in erf3.transitions]
    assert kinds[0] == "first_order"
    first = erf3.transitions[0]
    assert first.before == "unspecialized"
    assert first.after == "specialized R>S"
    assert first.jump < 0


def test_erf3_fold_precedes_equal_free_energy(erf3):
    (fold,) = _points(erf3, "fold", "specialized R>S")
    (first,) = _points(erf3, "first_order")
    (branch_point,) = _points(erf3, "branch_point", "unspecialized")
    assert fold.alpha < first.alpha < branch_point.alpha


def test_erf3_first_order_matches_mpmath_root(erf3):
    (point,) = _points(erf3, "first_order")
    u1 = [point.states["unspecialized"][k] for k in "RSC"]
    u2 = [point.states["specialized R>S"][k] for k in "RSC"]
    root = ref.equal_free_energy("erf", 3, u1, u2, point.alpha)
    assert point.alpha == pytest.approx(float(root[6]), rel=1e-10)


def test_erf3_fold_matches_mpmath_root(erf3):
    (point,) = _points(erf3, "fold", "specialized R>S")
    state = point.states["specialized R>S"]
    root = ref.fold("erf", 3, state["R"], state["S"], state["C"], point.alpha)
    assert point.alpha == pytest.approx(float(root[3]), rel=1e-10)


# -- ReLU, K = 3 ---------------------------------------------------------------------------
def test_relu3_branch_point_matches_mpmath_root(relu3):
    (point,) = _points(relu3, "branch_point", "unspecialized")
    state = point.states["unspecialized"]
    root = ref.branch_point("relu", 3, state["R"] * 3, state["C"], point.alpha)
    assert point.alpha == pytest.approx(float(root[2]), rel=1e-12)


def test_relu3_fold_and_branch_point_both_reported(relu3):
    """The fold of the R > S branch lies a hair below the branch point; both
    must be reported, in order, as separate points."""
    folds = _points(relu3, "fold", "specialized R>S")
    (branch_point,) = _points(relu3, "branch_point", "unspecialized")
    assert len(folds) == 1
    assert folds[0].alpha < branch_point.alpha
    assert branch_point.alpha - folds[0].alpha < 0.05 * branch_point.alpha


def test_relu3_fold_matches_mpmath_root(relu3):
    (point,) = _points(relu3, "fold", "specialized R>S")
    state = point.states["specialized R>S"]
    root = ref.fold("relu", 3, state["R"], state["S"], state["C"], point.alpha)
    assert point.alpha == pytest.approx(float(root[3]), rel=1e-10)


def test_relu3_both_specialized_branches_found(relu3):
    names = {b.name for b in relu3.branches}
    assert {"unspecialized", "specialized R>S", "specialized R<S"} <= names


def test_relu3_specialized_states_beat_unspecialized(relu3):
    """At large alpha both specialised states exist and are stable; R > S has
    the lower free energy."""
    alpha = 50.0
    problem = rs.SpecializationProblem("relu", 3)
    energies = {}
    for name in ("specialized R>S", "specialized R<S"):
        branch = relu3.branch(name)
        i = int(np.argmin(np.abs(branch.alpha - alpha)))
        assert branch.n_unstable[i] == 0
        u = problem.stationary_point([branch.R[i], branch.S[i], branch.C[i]], alpha)
        energies[name] = problem.free_energy(u, alpha)
    assert energies["specialized R>S"] < energies["specialized R<S"]


# -- consistency with the full theory and with brute force ----------------------------------
@pytest.mark.parametrize("fixture", ["erf3", "relu3"])
def test_branches_are_stationary_in_full_space(fixture, request):
    """Site-symmetric stationary points are stationary points of the free energy
    of the full matrices, because of the permutation symmetry."""
    result = request.getfixturevalue(fixture)
    act = rs.activation(result.activation)
    for branch in result.branches:
        for i in range(0, len(branch.alpha), max(1, len(branch.alpha) // 5)):
            R, Q, T = symmetric_matrices(
                branch.R[i], branch.S[i], branch.C[i], result.K
            )
            dR, dQ = free_energy_gradient(act, R, Q, branch.alpha[i], T)
            off_diagonal = dQ[~np.eye(result.K, dtype=bool)]
            scale = result.K * branch.alpha[i]
            assert np.max(np.abs(dR)) < 1e-8 * scale
            assert np.max(np.abs(off_diagonal)) < 1e-8 * scale


@pytest.mark.parametrize("alpha", [5.0, 20.0, 34.0, 35.0, 80.0])
def test_equilibrium_is_global_minimum(erf3, alpha):
    """The learning curve's free energy is the least one that scipy's
    minimiser finds from many starts."""
    curve = erf3.learning_curve
    F_curve = np.interp(alpha, curve.alpha, curve.free_energy)
    rng = np.random.default_rng(1)

    def objective(u):
        R, S, C = u
        A = 1 - C - (R - S) ** 2
        B = 1 + 2 * C - (R + 2 * S) ** 2
        if not (A > 0 and B > 0 and abs(R) < 1 and abs(S) < 1 and abs(C) < 1):
            return 1e6
        return float(ref.free_energy("erf", 3, R, S, C, alpha))

    best = math.inf
    for _ in range(12):
        start = rng.uniform([-0.5, -0.3, -0.2], [0.99, 0.6, 0.3])
        if objective(start) >= 1e6:
            continue
        found = minimize(
            objective,
            start,
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 4000},
        )
        best = min(best, found.fun)
    # Linear interpolation of F between grid points of spacing ~2% in alpha
    # errs by far less than 1e-3 (F is smooth except at transitions).
    assert best >= F_curve - 1e-3
    assert best <= F_curve + 1e-3


# -- high precision ------------------------------------------------------------------------------
def test_precision_refines_branch_point():
    problem = rs.SpecializationProblem("erf", 2)
    result = rs.solve(problem, alpha=(10.0, 40.0), precision=30)
    (point,) = _points(result, "branch_point")
    state = point.states["unspecialized"]
    root = ref.branch_point(
        "erf", 2, state["R"] + state["S"], state["C"], point.alpha, dps=45
    )
    with mp.workdps(40):
        difference = abs(mp.mpf(point.alpha_high_precision) - root[2])
        assert difference < mp.mpf(10) ** -25 * root[2]
    assert f"alpha = {point.alpha_high_precision}" in result.summary()


# -- results -------------------------------------------------------------------------------------
def test_json_round_trip(relu3, tmp_path):
    path = tmp_path / "relu3.json"
    relu3.to_json(path)
    again = rs.SpecializationResult.from_json(path)
    assert again.K == 3
    assert again.activation == "relu"
    assert [b.name for b in again.branches] == [b.name for b in relu3.branches]
    for a, b in zip(again.branches, relu3.branches):
        np.testing.assert_array_equal(a.alpha, b.alpha)
        np.testing.assert_array_equal(a.generalization_error, b.generalization_error)
        np.testing.assert_array_equal(a.n_unstable, b.n_unstable)
    assert again.critical_points == relu3.critical_points
    assert again.transitions == relu3.transitions
    assert json.loads(path.read_text())["metadata"]["version"] == rs.__version__


def test_csv_has_one_row_per_point(relu3):
    lines = relu3.to_csv().strip().splitlines()
    header = lines[0].split(",")
    assert header[:4] == ["activation", "K", "branch", "alpha"]
    assert "n_unstable" in header
    assert len(lines) - 1 == sum(len(b.alpha) for b in relu3.branches)


@pytest.mark.parametrize("name, K", [("erf", 2), ("relu", 3)])
def test_generic_switch_branch_finds_crossing(name, K):
    """The generic switch_branch of the continuation solver, applied to the
    3-D site-symmetric problem, finds the crossing branch that the analysis
    starts along the symmetry-breaking direction."""
    problem = rs.SpecializationProblem(name, K)
    start = problem.unspecialized_start(0.5)
    options = rs.ContinuationOptions(
        p_min=0.5, p_max=60.0, ds_max=0.15, newton_tol=1e-11
    )
    parent = rs.continuation(
        problem.continuation_problem(start, 0.5), rs.PALC(), options
    )
    (point,) = [p for p in parent.special_points if p.kind == "branch_point"]
    branches = rs.switch_branch(
        problem.continuation_problem(start, 0.5), parent, point, rs.PALC(), options
    )
    assert len(branches) == 2
    d_signs = {np.sign(b.u[3, 0] - b.u[3, 1]) for b in branches}
    assert d_signs == {1.0, -1.0}
    result = rs.solve(problem, alpha=(1.0, 60.0))
    reference = result.branch("specialized R>S")
    (above,) = [b for b in branches if b.u[3, 0] > b.u[3, 1]]
    i = len(above.p) // 2
    alpha = above.p[i]
    j = int(np.argmin(np.abs(reference.alpha - alpha)))
    corrected = problem.stationary_point(
        [reference.R[j], reference.S[j], reference.C[j]], alpha
    )
    # Both are converged stationary points at the same alpha on one branch.
    assert np.max(np.abs(corrected - above.u[i])) < 1e-8


# -- stability in the full space -------------------------------------------------------------
def test_full_label_counts_at_least_ansatz(relu3):
    """The trivial block of the full Hessian is the ansatz Hessian, so the
    full space has at least as many unstable directions."""
    for branch in relu3.branches:
        assert len(branch.n_unstable_full) == len(branch.alpha)
        assert np.all(branch.n_unstable_full >= branch.n_unstable)


def test_relu3_R_below_S_full_saddle(relu3):
    """At large alpha the R < S state is a minimum inside the ansatz but has a
    symmetry-breaking unstable direction, found by a dense eigendecomposition
    of the full-space Hessian (an algorithm independent of the block method
    that produced the label)."""
    from reluspec.theory.full_hessian import full_free_energy_hessian

    branch = relu3.branch("specialized R<S")
    i = int(np.argmin(np.abs(branch.alpha - 50.0)))
    assert branch.n_unstable[i] == 0
    assert branch.n_unstable_full[i] > 0
    assert "outside the ansatz" in branch.stability_note[i]
    assert not branch.stable[i]
    R, Q, _ = symmetric_matrices(branch.R[i], branch.S[i], branch.C[i], 3)
    dense = np.linalg.eigvalsh(
        full_free_energy_hessian(rs.ReLU(), R, Q, branch.alpha[i])
    )
    assert (
        int(np.sum(dense < -1e-10 * np.max(np.abs(dense)))) == branch.n_unstable_full[i]
    )


def test_equilibrium_is_full_space_stable(relu3, erf3):
    for result in (relu3, erf3):
        for branch in result.branches:
            assert np.all(branch.n_unstable_full[branch.equilibrium] == 0)


def test_stability_option_validated():
    with pytest.raises(ValueError, match="stability"):
        rs.solve(rs.SpecializationProblem("relu", 2), alpha=(1, 2), stability="partial")


def test_symmetry_breaking_points_reported(relu3):
    """Where a block outside the ansatz turns singular, the point carries the
    block and its multiplicity (K - 1 for the standard block), and the dense
    full-space Hessian there has that many eigenvalues near zero."""
    from reluspec.theory.full_hessian import full_free_energy_hessian

    points = [p for p in relu3.critical_points if p.kind == "symmetry_breaking"]
    assert points
    standard = [p for p in points if "block standard" in p.note]
    assert standard
    for point in standard:
        assert point.note.endswith("multiplicity 2")
        (state,) = point.states.values()
        R, Q, _ = symmetric_matrices(state["R"], state["S"], state["C"], 3)
        dense = np.linalg.eigvalsh(
            full_free_energy_hessian(rs.ReLU(), R, Q, point.alpha)
        )
        small = np.sort(np.abs(dense))[:2]
        assert np.all(small < 1e-7 * np.max(np.abs(dense)))


# -- compiled Newton's method --------------------------------------------------------


def _python_path_problem(name, K):
    """Return the problem of a subclass of the activation, which the compiled
    functions do not take, so that it runs the Python expressions."""
    base = type(rs.SpecializationProblem(name, K).activation)
    return rs.SpecializationProblem(type("Python" + base.__name__, (base,), {})(), K)


@pytest.mark.parametrize("name, K", [("relu", 3), ("erf", 5), ("relu", 40)])
@pytest.mark.parametrize("alpha", [2.0, 30.0])
def test_compiled_newton_matches_python_newton(name, K, alpha):
    """From the same starts, the compiled iteration and the Python one reach
    the same stationary points to the tolerance 1e-12 of both."""
    problem = rs.SpecializationProblem(name, K)
    python_problem = _python_path_problem(name, K)
    assert problem._kind is not None and python_problem._kind is None
    for start in ([0.0, 0.0, 0.0], [0.9, 0.01, 0.01], [0.5, 0.3, 0.2]):
        for method in ("stationary_point", "unspecialized_state"):
            try:
                expected = getattr(python_problem, method)(start, alpha)
            except StationaryPointError:
                with pytest.raises(StationaryPointError):
                    getattr(problem, method)(start, alpha)
                continue
            found = getattr(problem, method)(start, alpha)
            np.testing.assert_allclose(found, expected, rtol=0, atol=1e-11)
            assert np.max(np.abs(problem.gradient(found, alpha))) <= 1e-9 * (
                1 + alpha**2
            )


def test_compiled_newton_reports_failure():
    problem = rs.SpecializationProblem("relu", 3)
    with pytest.raises(StationaryPointError, match="outside the domain"):
        problem.stationary_point([0.9, 0.9, 0.0], 5.0)
    with pytest.raises(
        StationaryPointError, match="after 1 of at most 1 steps .* gradient max-norm"
    ):
        problem.stationary_point([0.5, 0.1, 0.1], 5.0, max_iter=1)


# -- ReLU at large K -------------------------------------------------------------------


@pytest.fixture(scope="module")
def relu_curves():
    from reluspec.analysis.limit import trace_critical_curve

    return {
        kind: trace_critical_curve("relu", kind) for kind in ("fold", "first_order")
    }


def test_large_K_relu_matches_mpmath(relu_curves):
    """At K = 1000 the fold, the equal-F point and the branch point lie within
    5e-7 of each other. The solve reports all three, with the transition at
    the equal-F point, and the values agree with the defining equations in
    (R, S, C) solved by mpmath at 30 digits."""
    from reluspec.analysis.limit import finite_K_critical_value

    K = 1000
    result = rs.solve(rs.SpecializationProblem("relu", K), alpha=(0.5, 60.0))
    (transition,) = result.transitions
    assert transition.kind == "first_order"
    assert (transition.before, transition.after) == (
        "unspecialized",
        "specialized R>S",
    )
    for kind in ("fold", "first_order"):
        (point,) = _points(result, kind)
        start = relu_curves[kind].solve_at(K)
        exact, digits = finite_K_critical_value("relu", kind, K, start, dps=30)
        assert digits >= 25
        assert abs(point.alpha - float(exact)) <= 4 * point.alpha_error
        assert point.alpha_error <= 1e-14 * point.alpha
    (branch_point,) = _points(result, "branch_point")
    fold = _points(result, "fold")[0]
    assert fold.alpha < transition.alpha < branch_point.alpha


def test_large_K_relu_independent_of_range():
    """The critical points do not depend on the alpha range solved."""
    problem = rs.SpecializationProblem("relu", 500)
    wide = rs.solve(problem, alpha=(0.5, 60.0))
    narrow = rs.solve(problem, alpha=(5.0, 8.0))
    for kind in ("fold", "first_order", "branch_point"):
        assert [p.alpha for p in _points(wide, kind)] == [
            p.alpha for p in _points(narrow, kind)
        ]
    assert [(t.kind, t.alpha) for t in wide.transitions] == [
        (t.kind, t.alpha) for t in narrow.transitions
    ]


def test_rsc_and_regular_equations_agree(monkeypatch, relu_curves):
    """Above the K where the regular equations take over, the equations in
    (R, S, C) give the same values, with the turning-point fold and the
    mpmath fallback of the equal-F point. The fold agrees to 1e-10 and the
    equal-F point within the error it reports. At K = 150 the equal-F system
    in (R, S, C) is singular to about 1e-9 of alpha, where its Newton steps
    stall, and the reported error (3e-10 relative) covers that."""
    import sys

    solve_module = sys.modules["reluspec.analysis.solve"]
    monkeypatch.setattr(solve_module, "REGULAR_SYSTEM_MIN_K", 10**9)
    for K in (150, 300):
        result = rs.solve(rs.SpecializationProblem("relu", K), alpha=(5.0, 8.0))
        (fold,) = _points(result, "fold")
        expected = relu_curves["fold"].solve_at(K).alpha
        assert fold.alpha == pytest.approx(expected, rel=1e-10, abs=0)
        (equal,) = _points(result, "first_order")
        expected = relu_curves["first_order"].solve_at(K).alpha
        assert abs(equal.alpha - expected) <= equal.alpha_error


def test_branches_reach_range_ends_and_folds(erf3):
    """Drawn branches start at the lower end of the range and pass through
    their folds: the end state and the fold state are stationary points in
    the branch arrays."""
    problem = rs.SpecializationProblem("erf", 3)
    unspecialized = erf3.branch("unspecialized")
    assert unspecialized.alpha[0] == erf3.alpha_range[0]
    assert unspecialized.alpha[-1] == pytest.approx(erf3.alpha_range[1], rel=1e-12)
    (fold,) = _points(erf3, "fold", "specialized R>S")
    branch = erf3.branch("specialized R>S")
    (at_fold,) = np.nonzero(branch.alpha == fold.alpha)[0]
    assert branch.alpha.min() == fold.alpha
    u = np.array([branch.R[at_fold], branch.S[at_fold], branch.C[at_fold]])
    assert not branch.equilibrium[at_fold]

    def residual(u, alpha):
        # The residual of the continuation, converged there to 1e-11.
        scale = problem.residual_scale / (1 + alpha**2)
        return np.max(np.abs(scale * problem.gradient(u, alpha)))

    assert residual(u, fold.alpha) < 1e-11
    for name in ("unspecialized", "specialized R>S"):
        b = erf3.branch(name)
        for i in (0, len(b.alpha) - 1):
            u = np.array([b.R[i], b.S[i], b.C[i]])
            assert residual(u, b.alpha[i]) < 1e-11


@pytest.mark.parametrize("K", [33, 59])
def test_relu_transition_at_K_33_and_59(K, caplog, relu_curves):
    """For these K the equal-F system in (R, S, C) does not converge from the
    grid; the regular equations give the transition to rounding."""
    with caplog.at_level(logging.WARNING, logger="reluspec"):
        result = rs.solve(rs.SpecializationProblem("relu", K), alpha=(0.5, 100.0))
    assert not caplog.records
    (transition,) = result.transitions
    assert transition.kind == "first_order"
    assert transition.alpha == pytest.approx(
        relu_curves["first_order"].solve_at(K).alpha, rel=1e-14
    )
    assert transition.alpha_error < 1e-13 * transition.alpha


def test_critical_points_csv_round_trips(erf3):
    rows = list(csv.DictReader(io.StringIO(erf3.critical_points_csv())))
    assert len(rows) == len(erf3.critical_points) + len(erf3.transitions)
    for row, point in zip(rows, erf3.critical_points):
        assert row["kind"] == point.kind
        assert float(row["alpha"]) == point.alpha
        assert float(row["alpha_error"]) == point.alpha_error
        assert row["branches"].split("; ") == list(point.branches)
    for row, transition in zip(rows[len(erf3.critical_points) :], erf3.transitions):
        assert row["kind"] == f"transition:{transition.kind}"
        assert float(row["alpha"]) == transition.alpha
        assert float(row["jump"]) == transition.jump


def test_precision_refines_transitions():
    """With precision, a transition moves to the refined alpha of the point
    it was located at, with that point's error."""
    result = rs.solve(
        rs.SpecializationProblem("erf", 3), alpha=(20.0, 60.0), precision=20
    )
    (transition,) = result.transitions
    (point,) = _points(result, "first_order")
    assert transition.alpha == point.alpha
    # The refined value is a double, so its error is its rounding.
    assert transition.alpha_error == 0.5 * math.ulp(transition.alpha)
    assert transition.alpha == float(mp.mpf(point.alpha_high_precision))


@pytest.mark.parametrize("K", [20, 100, 1000, 10000, 100000])
def test_large_K_relu_curve_consistent(K, caplog):
    """Next to the transition the branches of large-K ReLU lie closer
    together than the corrected states resolve; the learning curve still
    has a state at every grid point, changes state once, at the equal-F
    point, its error never rises (the equilibrium state improves with more
    data), every state labelled R>S has R > S, and every state is
    stationary to the tolerance of the continuation."""
    problem = rs.SpecializationProblem("relu", K)
    with caplog.at_level(logging.WARNING, logger="reluspec"):
        result = rs.solve(problem, alpha=(0.5, 100.0))
    assert not [r for r in caplog.records if "no locally stable" in r.getMessage()]
    curve = result.learning_curve
    for i, alpha in enumerate(curve.alpha):
        u = np.array([curve.R[i], curve.S[i], curve.C[i]])
        scale = problem.residual_scale / (1 + alpha**2)
        assert np.max(np.abs(scale * problem.gradient(u, alpha))) < 1e-11
    (transition,) = result.transitions
    changes = [
        (curve.branch[i], curve.branch[i + 1], curve.alpha[i + 1])
        for i in range(len(curve.alpha) - 1)
        if curve.branch[i] != curve.branch[i + 1]
    ]
    assert changes == [("unspecialized", "specialized R>S", transition.alpha)]
    error = curve.generalization_error
    assert np.all(np.diff(error) <= 1e-12 * error[1:])
    specialized = np.array([name == "specialized R>S" for name in curve.branch])
    assert np.all(curve.R[specialized] > curve.S[specialized])


@pytest.mark.parametrize(
    "name, K, alpha", [("erf", 10, (0.5, 100.0)), ("erf", 15, (1.0, 200.0))]
)
def test_alpha_error_bounds_mpmath_error(name, K, alpha):
    """The reported alpha_error bounds the distance to the root of the same
    defining equations solved in mpmath at 30 digits."""
    problem = rs.SpecializationProblem(name, K)
    double = rs.solve(problem, alpha=alpha)
    refined = rs.solve(problem, alpha=alpha, precision=30)
    checked = 0
    for point, reference in zip(double.critical_points, refined.critical_points):
        if not reference.alpha_high_precision:
            continue
        error = abs(mp.mpf(reference.alpha_high_precision) - point.alpha)
        assert error <= point.alpha_error
        checked += 1
    assert checked >= 2


def test_newton_stays_inside_domain():
    """A start from which every halved step leaves the domain raises instead
    of returning the last trial point (found by fuzzing at K = 100000)."""
    problem = rs.SpecializationProblem("erf", 100000)
    start = [0.7467869262245264, 4.9196068089333935e-06, 0.36145256581447865]
    alpha = 0.5137064680404803
    try:
        u = problem.stationary_point(start, alpha)
    except StationaryPointError:
        return
    assert problem.is_valid(u)
    scale = problem.residual_scale / (1 + alpha**2)
    assert np.max(np.abs(scale * problem.gradient(u, alpha))) < 1e-9


@pytest.mark.parametrize("alpha", [-1.0, math.nan, math.inf])
def test_stationary_point_rejects_invalid_alpha(alpha):
    with pytest.raises(ValueError, match="alpha = .* is invalid: .* >= 0"):
        rs.SpecializationProblem("relu", 3).stationary_point([0.1, 0.0, 0.0], alpha)


def test_end_states_have_their_own_labels():
    """States added at the ends of a narrow range are labelled for
    themselves: at alpha = 6.27 the unspecialised ReLU K = 4 state is stable
    (its branch point is at 6.2826) and in equilibrium (the equal-F point is
    at 6.2757, where the curve changes branch)."""
    result = rs.solve(rs.SpecializationProblem("relu", 4), alpha=(6.27, 6.2835))
    branch = result.branch("unspecialized")
    assert branch.alpha[0] == 6.27
    assert branch.n_unstable[0] == 0
    assert branch.n_unstable_full[0] == 0
    assert branch.equilibrium[0]
    assert result.learning_curve.branch[0] == "unspecialized"
    assert len(np.unique(branch.alpha)) == len(branch.alpha)


def test_mpmath_fallback_needs_converged_digits(monkeypatch):
    """Where Newton's method stalls in double precision, the mpmath iteration
    takes over, and a result with too few correct digits is an error that
    names both attempts."""
    import sys

    locate = sys.modules["reluspec.analysis.locate"]

    def stalled(system, x0, kind, alpha_index):
        error = locate.LocationError(f"{kind}: Newton's method did not converge")
        error.iterate = np.asarray(x0, dtype=float)
        raise error

    monkeypatch.setattr(locate, "_newton", stalled)
    monkeypatch.setattr(locate, "_refine_mp", lambda *args, **kwargs: ([0.5] * 7, 3))
    problem = rs.SpecializationProblem("relu", 3)
    with pytest.raises(
        locate.LocationError,
        match="did not converge; the iteration in mpmath .* only 3 correct digits",
    ):
        locate.locate_fold(problem, [0.3, 0.1, 0.05], 6.2)


def test_equal_free_energy_bisection_matches_newton(monkeypatch):
    """The bisection fallback for the equal-F point finds the point that
    Newton's method on the augmented system finds, within their errors."""
    solve_module = importlib.import_module("reluspec.analysis.solve")
    captured = {}
    equilibrium = solve_module._equilibrium

    def capture(problem, pieces, *args, **kwargs):
        captured["pieces"] = pieces
        return equilibrium(problem, pieces, *args, **kwargs)

    monkeypatch.setattr(solve_module, "_equilibrium", capture)
    problem = rs.SpecializationProblem("erf", 3)
    result = rs.solve(problem, alpha=(20.0, 60.0))
    (transition,) = result.transitions
    pieces = captured["pieces"]
    alpha = transition.alpha

    def stable_piece(name):
        for piece in pieces:
            low, high = piece.alpha_range()
            if piece.name == name and low < alpha < high:
                u = piece.state(problem, alpha)
                if u is not None and problem.n_unstable(u, alpha) == 0:
                    return piece
        raise AssertionError(f"no stable piece of {name} at alpha = {alpha}")

    before, after = stable_piece(transition.before), stable_piece(transition.after)
    located = solve_module._equal_free_energy_by_bisection(
        problem, before, after, 0.99 * alpha, 1.01 * alpha
    )
    assert located is not None
    assert abs(located.alpha - alpha) <= located.alpha_error + transition.alpha_error


def test_range_end_state_is_converged():
    """The state on the upper end of the range is corrected like every other
    traced state: Newton's method from it moves eps_g by a relative 1e-8 at
    most (the continuation's tolerance on the scaled gradient allows about
    1e-10 at alpha = 1e8). An end state left unpolished was off by 2.6e-3."""
    problem = rs.SpecializationProblem("erf", 5)
    curve = rs.solve(problem, alpha=(1.0, 1e8)).learning_curve
    for i in (-2, -1):
        u = np.array([curve.R[i], curve.S[i], curve.C[i]])
        polished = problem.stationary_point(u, curve.alpha[i])
        error = problem.generalization_error(u)
        assert error == pytest.approx(problem.generalization_error(polished), rel=1e-8)
