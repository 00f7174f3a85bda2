"""Bad input, failures and limits of the continuation solver."""

import dataclasses
import math

import numpy as np
import pytest

from reluspec.continuation import (
    PALC,
    Branch,
    ContinuationError,
    ContinuationOptions,
    ContinuationProblem,
    continuation,
    newton,
    switch_branch,
)


def parabola(u0=1.0, p0=1.0):
    return ContinuationProblem(
        residual=lambda u, p: u**2 - p,
        jacobian=lambda u, p: np.diag(2 * u),
        u0=[u0],
        p0=p0,
    )


# -- options ---------------------------------------------------------------------

BAD_OPTIONS = [
    ("ds", 0.0),
    ("ds", 1.0),  # above ds_max = 0.5
    ("ds_min", -1e-3),
    ("ds_min", math.nan),
    ("ds_max", 1e-9),  # below ds_min
    ("p_min", math.nan),
    ("p_max", -math.inf),
    ("max_steps", 0),
    ("max_steps", 2.5),
    ("newton_tol", 0.0),
    ("newton_tol", math.inf),
    ("newton_max_iter", 0),
    ("start_newton_max_iter", -1),
    ("direction", 0),
    ("direction", True),
    ("detect_folds", 1),
    ("detect_branch_points", "yes"),
    ("detect_stability_changes", None),
    ("locate_tol", 0.0),
    ("locate_max_iter", 0),
    ("max_rejections", -1),
    ("angle_max", 0.0),
    ("angle_max", 4.0),
    ("verbosity", 4),
]


@pytest.mark.parametrize("name, value", BAD_OPTIONS)
def test_options_reject_bad_value(name, value):
    with pytest.raises(ValueError, match=name):
        ContinuationOptions(**{name: value})


def test_options_bounds_order():
    with pytest.raises(ValueError, match="p_max"):
        ContinuationOptions(p_min=1.0, p_max=1.0)


def test_options_replace_validates():
    options = ContinuationOptions()
    assert dataclasses.replace(options, ds=0.2).ds == 0.2
    with pytest.raises(ValueError, match="ds"):
        dataclasses.replace(options, ds=-0.2)


@pytest.mark.parametrize(
    "name, value",
    [
        ("tangent", "natural"),
        ("step_growth", 0.9),
        ("step_shrink", 1.0),
        ("target_newton_iterations", 0),
    ],
)
def test_palc_rejects_bad_value(name, value):
    with pytest.raises(ValueError, match=name):
        PALC(**{name: value})


# -- problems and arguments ---------------------------------------------------------


def test_problem_rejects_bad_input():
    with pytest.raises(ValueError, match="residual"):
        ContinuationProblem(residual=None, u0=[1.0], p0=1.0)
    with pytest.raises(ValueError, match="u0"):
        ContinuationProblem(residual=lambda u, p: u, u0=[[1.0]], p0=1.0)
    with pytest.raises(ValueError, match="u0"):
        ContinuationProblem(residual=lambda u, p: u, u0=[math.nan], p0=1.0)
    with pytest.raises(ValueError, match="p0"):
        ContinuationProblem(residual=lambda u, p: u, u0=[1.0], p0=math.inf)
    with pytest.raises(ValueError, match="p0"):
        ContinuationProblem(
            residual=lambda u, p: u, u0=[1.0], p0=0.0, parameter_scale="log"
        )
    with pytest.raises(ValueError, match="parameter_scale"):
        ContinuationProblem(
            residual=lambda u, p: u, u0=[1.0], p0=1.0, parameter_scale="ln"
        )
    with pytest.raises(ValueError, match="jacobian"):
        ContinuationProblem(residual=lambda u, p: u, u0=[1.0], p0=1.0, jacobian=3)


def test_start_outside_bounds():
    with pytest.raises(ValueError, match="p0"):
        continuation(parabola(), PALC(), ContinuationOptions(p_max=0.5))


def test_log_scale_needs_positive_upper_bound():
    problem = ContinuationProblem(
        residual=lambda u, p: u - p, u0=[1.0], p0=1.0, parameter_scale="log"
    )
    with pytest.raises(ValueError, match="p_max"):
        continuation(problem, PALC(), ContinuationOptions(p_min=-2.0, p_max=-1.0))


def test_wrong_residual_shape():
    problem = ContinuationProblem(
        residual=lambda u, p: np.append(u, p), u0=[1.0], p0=1.0
    )
    with pytest.raises(ValueError, match="residual returned shape"):
        continuation(problem)


def test_wrong_tangent_shape():
    with pytest.raises(ValueError, match="tangent"):
        continuation(parabola(), tangent=[1.0])


def test_asymmetric_stability_matrix():
    problem = ContinuationProblem(
        residual=lambda u, p: u - p,
        stability_matrix=lambda u, p: np.array([[1.0, 2.0], [0.0, 1.0]]),
        u0=[1.0, 1.0],
        p0=1.0,
    )
    with pytest.raises(ValueError, match="symmetric"):
        continuation(problem)


# -- starts -----------------------------------------------------------------------


def test_start_is_corrected():
    branch = continuation(parabola(u0=1.3), PALC(), ContinuationOptions(max_steps=2))
    assert branch.u[0, 0] == pytest.approx(1.0, abs=1e-12)
    assert branch.newton_iterations[0] > 0


def test_start_without_solution_raises():
    problem = ContinuationProblem(
        residual=lambda u, p: u**2 + 1 + p**2, u0=[0.5], p0=0.0
    )
    with pytest.raises(ContinuationError, match="not a solution") as info:
        continuation(problem)
    # min over u of u^2 + 1 is 1, so the residual never drops below 1.
    assert info.value.residual_norm >= 1.0
    assert info.value.iterations is not None
    assert info.value.parameter == 0.0


def test_start_at_branch_point_raises():
    # Exact derivatives: a finite-difference F_u of size eps**(2/3) would hide
    # the rank deficiency.
    problem = ContinuationProblem(
        residual=lambda u, p: u * p - u**3,
        jacobian=lambda u, p: np.array([[p - 3 * u[0] ** 2]]),
        parameter_derivative=lambda u, p: u.copy(),
        u0=[0.0],
        p0=0.0,
    )
    with pytest.raises(ContinuationError, match="rank-deficient"):
        continuation(problem)


def test_start_with_nan_residual_raises():
    problem = ContinuationProblem(
        residual=lambda u, p: np.full(1, np.nan) if u[0] < 0 else np.sqrt(u) - p,
        u0=[-1.0],
        p0=1.0,
    )
    with pytest.raises(ContinuationError, match="NaN"):
        continuation(problem)


# -- ends of a branch -------------------------------------------------------------


def test_nan_residual_ends_branch():
    """u - sqrt(p) is NaN for p < 0: the branch stops there with a message."""
    problem = ContinuationProblem(
        residual=lambda u, p: u - np.sqrt(p) if p >= 0 else np.full(1, np.nan),
        u0=[1.0],
        p0=1.0,
    )
    options = ContinuationOptions(direction=-1, ds=0.1, ds_min=1e-6)
    branch = continuation(problem, PALC(), options)
    assert branch.status == "newton_failed"
    assert "NaN" in branch.message
    assert np.all(branch.p >= 0)
    assert len(branch) >= 2


def test_max_rejections_ends_branch():
    problem = ContinuationProblem(
        residual=lambda u, p: u - np.sqrt(p) if p >= 0 else np.full(1, np.nan),
        u0=[1.0],
        p0=1.0,
    )
    options = ContinuationOptions(direction=-1, ds=0.5, ds_min=1e-12, max_rejections=2)
    branch = continuation(problem, PALC(), options)
    assert branch.status in ("max_rejections", "newton_failed")
    assert branch.n_rejected >= 1


def test_max_steps():
    branch = continuation(parabola(), PALC(), ContinuationOptions(max_steps=3))
    assert branch.status == "max_steps"
    assert len(branch) == 4


def test_angle_failure_at_minimum_step_is_branch_jump():
    problem = ContinuationProblem(
        residual=lambda u, p: u**2 + p**2 - 1, u0=[0.6], p0=0.8
    )
    options = ContinuationOptions(ds=0.1, ds_min=0.1, ds_max=0.1, angle_max=1e-3)
    branch = continuation(problem, PALC(), options)
    assert branch.status == "suspected_branch_jump"
    assert "angle_max" in branch.message
    assert len(branch) == 1


def test_parameter_bound_is_exact():
    branch = continuation(parabola(), PALC(), ContinuationOptions(p_max=3.0, ds=0.3))
    assert branch.status == "parameter_bound"
    assert branch.p[-1] == 3.0
    assert branch.u[-1, 0] == pytest.approx(math.sqrt(3.0), abs=1e-12)


def test_direction_reverses():
    forward = continuation(parabola(), PALC(), ContinuationOptions(max_steps=2))
    backward = continuation(
        parabola(), PALC(), ContinuationOptions(max_steps=2, direction=-1)
    )
    assert forward.p[1] > 1.0
    assert backward.p[1] < 1.0


def test_detection_switches():
    options = ContinuationOptions(p_max=1.0, direction=-1, detect_folds=False)
    branch = continuation(parabola(), PALC(), options)
    # Without fold detection the fold's change of stability is still reported.
    assert [point.kind for point in branch.special_points] == ["stability_change"]
    options = dataclasses.replace(options, detect_stability_changes=False)
    assert continuation(parabola(), PALC(), options).special_points == ()


# -- results ----------------------------------------------------------------------


def test_branch_is_immutable():
    branch = continuation(
        parabola(), PALC(), ContinuationOptions(p_max=1.0, direction=-1)
    )
    for name in (
        "u",
        "p",
        "tangents",
        "ds",
        "n_unstable",
        "eigenvalues",
        "newton_iterations",
    ):
        with pytest.raises(ValueError):
            getattr(branch, name)[0] = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        branch.status = "changed"
    point = branch.special_points[0]
    with pytest.raises(ValueError):
        point.u[0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.p = 2.0
    assert isinstance(branch, Branch)
    assert branch.stable[0]
    assert not branch.stable[-1]


def test_switch_branch_rejects_fold():
    branch = continuation(
        parabola(), PALC(), ContinuationOptions(p_max=1.0, direction=-1)
    )
    with pytest.raises(ValueError, match="branch_point"):
        switch_branch(parabola(), branch, branch.special_points[0])


# -- Newton helper ------------------------------------------------------------------


def test_newton_solves():
    x, iterations = newton(
        lambda x: x**2 - 2, lambda x: np.diag(2 * x), [1.0], tol=1e-14
    )
    assert x[0] == pytest.approx(math.sqrt(2), rel=1e-15)
    assert 3 <= iterations <= 8


def test_newton_failure_carries_diagnostics():
    with pytest.raises(ContinuationError, match="did not converge") as info:
        newton(lambda x: x**2 + 1, lambda x: np.diag(2 * x), [0.5], max_iter=5)
    assert info.value.residual_norm >= 1.0
    assert info.value.iterations == 5
    assert info.value.point.shape == (1,)


def test_newton_singular_jacobian():
    with pytest.raises(ContinuationError, match="singular"):
        newton(lambda x: x**2 + 1, lambda x: np.zeros((1, 1)), [0.0])


def test_newton_rejects_bad_arguments():
    with pytest.raises(ValueError, match="tol"):
        newton(lambda x: x, lambda x: np.eye(1), [1.0], tol=-1.0)
    with pytest.raises(ValueError, match="max_iter"):
        newton(lambda x: x, lambda x: np.eye(1), [1.0], max_iter=-1)
