"""Benchmark: complete specialisation analysis against brute-force minimisation.

Run with ``python benchmarks/bench_analysis.py [--quick]``.

For each (activation, K) the script times :func:`reluspec.solve` over alpha in
(0.5, 100) and a brute-force baseline measured in the same run: scipy's
L-BFGS-B minimisation of the free energy from several starts at each point of
a log-spaced alpha grid, where the equilibrium transition is placed at the
grid point where the state of least F changes from unspecialised to
specialised, so its precision is the grid spacing. The precision of the
library's transition is its reported ``alpha_error``. The script then times
a phase diagram over 50 values of K, in one process and in one process per
CPU, and compares it with the baseline cost per K measured above. Both the
solve and the baseline evaluate F and its gradient by the same compiled
functions.
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings

import numpy as np
from scipy.optimize import minimize

import reluspec as rs

ALPHA = (0.5, 100.0)


def brute_force(activation: str, K: int, grid_points: int, starts: int, seed: int = 0):
    """Return (transition alpha, its precision, seconds) from multistart minimisation."""
    problem = rs.SpecializationProblem(activation, K)
    rng = np.random.default_rng(seed)
    grid = np.geomspace(*ALPHA, grid_points)

    def objective(u, alpha):
        if not problem.is_valid(u):
            return 1e10, np.zeros(3)
        return problem.free_energy(u, alpha), problem.gradient(u, alpha)

    t0 = time.perf_counter()
    specialized = []
    for alpha in grid:
        best_F, best_u = math.inf, None
        for _ in range(starts):
            # Draw until the start lies in the domain, so that every alpha
            # gets the same number of minimisations at every K.
            u0 = rng.uniform([-0.5, -0.2, -0.1], [0.99, 0.5, 0.2])
            while not problem.is_valid(u0):
                u0 = rng.uniform([-0.5, -0.2, -0.1], [0.99, 0.5, 0.2])
            found = minimize(objective, u0, args=(alpha,), jac=True, method="L-BFGS-B")
            if found.fun < best_F:
                best_F, best_u = found.fun, found.x
        specialized.append(best_u is not None and abs(best_u[0] - best_u[1]) > 1e-3)
    seconds = time.perf_counter() - t0
    index = int(np.argmax(specialized)) if any(specialized) else len(grid) - 1
    spacing = grid[index] - grid[max(index - 1, 0)]
    return grid[index], spacing, seconds


def time_solve(activation: str, K: int, repeat: int = 5):
    """Return (result, first transition, median seconds of ``repeat`` solves)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = rs.solve(rs.SpecializationProblem(activation, K), ALPHA)
        times.append(time.perf_counter() - t0)
    transition = result.transitions[0] if result.transitions else None
    return result, transition, float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller baseline grid")
    args = parser.parse_args()
    grid_points, starts = (100, 6) if args.quick else (200, 10)
    warnings.simplefilter("ignore")

    print(f"brute force: {grid_points} log-spaced alpha in {ALPHA}, {starts} starts each")
    header = (
        f"{'case':<10}{'solve s':>9}{'brute s':>9}{'speed-up':>10}"
        f"{'alpha_t':>16}{'+-':>9}{'brute alpha':>13}{'+-':>9}{'precision gain':>16}"
    )
    print(header)
    per_K_brute = []
    for activation, K in [("erf", 2), ("erf", 3), ("relu", 3), ("relu", 10)]:
        _, transition, solve_seconds = time_solve(activation, K)
        alpha_b, spacing, brute_seconds = brute_force(activation, K, grid_points, starts)
        per_K_brute.append(brute_seconds)
        error = max(transition.alpha_error, 1e-16 * transition.alpha)
        print(
            f"{activation + ' ' + str(K):<10}{solve_seconds:>9.3f}{brute_seconds:>9.2f}"
            f"{brute_seconds / solve_seconds:>10.0f}{transition.alpha:>16.10f}"
            f"{error:>9.1e}{alpha_b:>13.4f}{spacing:>9.1e}{spacing / error:>16.1e}"
        )

    # The baseline's cost per K over the diagram's range, from three K.
    for K in (20, 35, 51):
        per_K_brute.append(brute_force("relu", K, grid_points, starts)[2])
    Ks = list(range(2, 52))
    brute_estimate = np.mean(per_K_brute) * len(Ks)
    for workers in (1, 0):
        t0 = time.perf_counter()
        rs.phase_diagram(["relu"], Ks, ALPHA, progress=False, workers=workers)
        diagram_seconds = time.perf_counter() - t0
        processes = workers or os.cpu_count()
        print(
            f"phase diagram, relu, K = 2..51, {processes} process(es): "
            f"{diagram_seconds:.1f} s; brute force estimated from the per-K cost "
            f"above: {brute_estimate:.0f} s (ratio {brute_estimate / diagram_seconds:.0f})"
        )


if __name__ == "__main__":
    main()
