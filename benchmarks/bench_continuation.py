"""Benchmark of the continuation solver on problems with known special points.

For each problem: accepted steps, rejected steps, Newton updates, wall time
(best of ``--repeat`` runs) and the error of each located special point
against its exact value. Run from the repository root:

    PYTHONPATH=src python benchmarks/bench_continuation.py [--repeat 3]

The output is a Markdown table.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time

import mpmath
import numpy as np
import scipy.optimize

from reluspec.continuation import (
    PALC,
    ContinuationOptions,
    ContinuationProblem,
    continuation,
    switch_branch,
)


def fold_case():
    problem = ContinuationProblem(
        residual=lambda u, p: u**2 - p,
        jacobian=lambda u, p: np.diag(2 * u),
        parameter_derivative=lambda u, p: np.array([-1.0]),
        u0=[1.0],
        p0=1.0,
    )
    return problem, ContinuationOptions(p_max=1.0, direction=-1), [0.0]


def transcritical_case():
    problem = ContinuationProblem(
        residual=lambda u, p: u * p - u**2,
        jacobian=lambda u, p: np.array([[p - 2 * u[0]]]),
        parameter_derivative=lambda u, p: u.copy(),
        u0=[0.0],
        p0=-0.93,
    )
    return problem, ContinuationOptions(p_min=-1.0, p_max=1.0, ds=0.07), [0.0]


def pitchfork_case(side: bool):
    problem = ContinuationProblem(
        residual=lambda u, p: u * p - u**3,
        jacobian=lambda u, p: np.array([[p - 3 * u[0] ** 2]]),
        parameter_derivative=lambda u, p: u.copy(),
        u0=[1.0 if side else 0.0],
        p0=1.0 if side else -0.93,
    )
    if side:
        options = ContinuationOptions(p_max=1.0, ds=0.1, direction=-1)
    else:
        options = ContinuationOptions(p_min=-1.0, p_max=1.0, ds=0.07)
    return problem, options, [0.0]


def symmetric_case(K: int):
    def residual(u, p):
        m = u.mean()
        d = u - m
        a = 1 - p + 0.5 * m**2
        return (
            (m - np.sin(p))
            + m / (2 * K) * np.sum(d**2)
            + a * d
            + d**3
            - np.sum(d**3) / K
        )

    def jacobian(u, p):
        m = u.mean()
        d = u - m
        a = 1 - p + 0.5 * m**2
        total = np.sum(d**2)
        jac = (1 / K + total / (2 * K**2)) * np.ones((K, K))
        jac += (m / K) * (d[None, :] + d[:, None])
        jac += a * (np.eye(K) - 1 / K)
        jac += 3 * np.diag(d**2) - 3 * (d**2)[:, None] / K - 3 * (d**2)[None, :] / K
        jac += 3 * total / K**2
        return jac

    problem = ContinuationProblem(
        residual=residual,
        jacobian=jacobian,
        parameter_derivative=lambda u, p: -np.cos(p) - (u - u.mean()),
        stability_matrix=jacobian,
        u0=np.zeros(K),
        p0=0.0,
    )
    p_star = float(mpmath.findroot(lambda p: 1 - p + mpmath.sin(p) ** 2 / 2, 1.5))
    return problem, ContinuationOptions(p_max=3.0, ds=0.1), [p_star]


def bratu_case(N: int):
    h = 1.0 / N
    n = N - 1
    second = (
        np.diag(-2.0 * np.ones(n))
        + np.diag(np.ones(n - 1), 1)
        + np.diag(np.ones(n - 1), -1)
    ) / h**2
    problem = ContinuationProblem(
        residual=lambda u, lam: -(second @ u) - lam * np.exp(u),
        jacobian=lambda u, lam: -second - lam * np.diag(np.exp(u)),
        parameter_derivative=lambda u, lam: -np.exp(u),
        u0=np.zeros(n),
        p0=0.5,
    )
    options = ContinuationOptions(
        p_min=0.5, p_max=4.0, ds=0.5, ds_max=5.0, max_steps=200
    )
    return problem, options, None  # reference: the fold system, solved below


def bratu_reference(problem, u, lam):
    """Solve F = 0, F_u phi = 0, |phi| = 1 with scipy for the discrete fold."""
    n = problem.n

    def system(x):
        return np.concatenate(
            [
                problem.residual(x[:n], x[2 * n]),
                problem.jacobian(x[:n], x[2 * n]) @ x[n : 2 * n],
                [x[n : 2 * n] @ x[n : 2 * n] - 1],
            ]
        )

    phi = np.sin(np.pi * np.arange(1, n + 1) / (n + 1))
    x0 = np.concatenate([u, phi / np.linalg.norm(phi), [lam]])
    return scipy.optimize.fsolve(system, x0, xtol=1e-12)[2 * n]


def s_curve_case():
    problem = ContinuationProblem(
        residual=lambda u, p: u**3 - 3 * u - np.log(p),
        jacobian=lambda u, p: np.array([[3 * u[0] ** 2 - 3]]),
        parameter_derivative=lambda u, p: np.array([-1 / p]),
        u0=[-2.5],
        p0=1e-3,
        parameter_scale="log",
    )
    options = ContinuationOptions(p_min=1e-3, p_max=1e4, ds=0.1)
    return problem, options, [math.exp(2), math.exp(-2)]


def gradient_3d_case():
    """Build a 3-D gradient system over p in [0.1, 1e4] on the log scale, no events.

    f = sum_i (u_i - c_i(p))^2 / 2 + (u_0 u_1 u_2) / 10 with c(p) =
    (tanh(ln p), 1 / (1 + p), ln(1 + p) / 10): the size and cost of the
    intended three-parameter specialisation problem.
    """

    def targets(p):
        return np.array([math.tanh(math.log(p)), 1 / (1 + p), math.log1p(p) / 10])

    def target_derivatives(p):
        return np.array(
            [
                (1 - math.tanh(math.log(p)) ** 2) / p,
                -1 / (1 + p) ** 2,
                1 / (10 * (1 + p)),
            ]
        )

    def residual(u, p):
        coupling = np.array([u[1] * u[2], u[0] * u[2], u[0] * u[1]]) / 10
        return u - targets(p) + coupling

    def jacobian(u, p):
        return (
            np.eye(3)
            + np.array([[0, u[2], u[1]], [u[2], 0, u[0]], [u[1], u[0], 0]]) / 10
        )

    problem = ContinuationProblem(
        residual=residual,
        jacobian=jacobian,
        parameter_derivative=lambda u, p: -target_derivatives(p),
        stability_matrix=jacobian,
        u0=targets(0.1),
        p0=0.1,
        parameter_scale="log",
    )
    return problem, ContinuationOptions(p_min=0.1, p_max=1e4, ds=0.1), []


CASES = [
    ("fold u^2 - p", fold_case),
    ("transcritical u p - u^2", transcritical_case),
    ("pitchfork, trivial branch", lambda: pitchfork_case(False)),
    ("pitchfork, side branch", lambda: pitchfork_case(True)),
    ("symmetric K=3 (BP mult. 2)", lambda: symmetric_case(3)),
    ("symmetric K=8 (BP mult. 7)", lambda: symmetric_case(8)),
    ("S-curve, log p in [1e-3, 1e4]", s_curve_case),
    ("3-D gradient, log p in [0.1, 1e4]", gradient_3d_case),
    ("Bratu N=40", lambda: bratu_case(40)),
    ("Bratu N=160", lambda: bratu_case(160)),
]


def run_case(name, make, repeat):
    problem, options, exact = make()
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        branch = continuation(problem, PALC(), options)
        best = min(best, time.perf_counter() - start)
    if exact is None:
        exact = [
            bratu_reference(problem, point.u, point.p)
            for point in branch.special_points
        ]
    errors = [
        abs(point.p - value) for point, value in zip(branch.special_points, exact)
    ]
    kinds = ", ".join(
        f"{point.kind} (m={point.multiplicity})"
        if point.multiplicity > 1
        else point.kind
        for point in branch.special_points
    )
    error_text = ", ".join(f"{error:.1e}" for error in errors) or "-"
    if len(exact) != len(branch.special_points):
        error_text += f" (expected {len(exact)} points)"
    return (
        f"| {name} | {len(branch) - 1} | {branch.n_rejected} | "
        f"{int(branch.newton_iterations.sum())} | {1e3 * best:.1f} | "
        f"{1e6 * best / max(1, len(branch) - 1):.0f} | {kinds or '-'} | {error_text} |"
    )


def run_switching(repeat):
    problem, options, _ = pitchfork_case(False)
    branch = continuation(problem, PALC(), options)
    point = branch.special_points[0]
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        new_branches = switch_branch(problem, branch, point, PALC(), options)
        best = min(best, time.perf_counter() - start)
    steps = sum(len(new) - 1 for new in new_branches)
    iterations = sum(int(new.newton_iterations.sum()) for new in new_branches)
    deviation = max(
        float(np.max(np.abs(new.u[:, 0] ** 2 - new.p))) for new in new_branches
    )
    return (
        f"| switch_branch at the pitchfork (both sides) | {steps} | "
        f"{sum(new.n_rejected for new in new_branches)} | {iterations} | "
        f"{1e3 * best:.1f} | {1e6 * best / steps:.0f} | "
        "max abs(u^2 - p) on new branches | "
        f"{deviation:.1e} |"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per case; the best time is kept"
    )
    args = parser.parse_args(argv)
    print(
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"{platform.processor() or platform.machine()}; default PALC (secant) and "
        "options except as set per case; time is the best of "
        f"{args.repeat} runs.\n"
    )
    print(
        "| problem | steps | rejected | Newton updates | time (ms) | per step (us) | "
        "special points | abs error of p |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, make in CASES:
        print(run_case(name, make, args.repeat))
    print(run_switching(args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
