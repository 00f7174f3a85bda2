"""Benchmark: tracing phase boundaries in 1/K against independent fixed-K solves.

Run with ``python benchmarks/bench_limit.py [--count N] [--K-max K]``.

For each activation and each kind of critical point (branch point, fold,
equal free energies) the script times, in the same run:

* the continuation of the defining system in ``eps = 1/K`` from K = infinity
  to K = 2 (:func:`reluspec.analysis.limit.trace_critical_curve`), followed by
  Newton corrections at N values of K from the traced curve;
* N independent solves of the same scaled defining system at each K by
  Newton's method started from the K = infinity solution (no continuation);
* N independent fixed-K analyses :func:`reluspec.solve` over an alpha range
  that contains the three critical points, which trace every branch of that K
  in the original order parameters and locate its critical points.

The N values of K are integers spaced geometrically from 2 to ``--K-max``.
Agreement is the largest relative difference of alpha between the traced
curve and each independent method, over the K where that method found the
point. Misses count the K where it did not.
"""

from __future__ import annotations

import argparse
import logging
import math
import time

import numpy as np

import reluspec as rs
from reluspec.analysis import limit as L


def alpha_range(activation: str, K: int):
    """Return an alpha range containing the branch point, fold and equal-F point."""
    if activation == "relu":
        return (5.0, 7.0)
    return (15.0, max(80.0, 14.0 * K))


def independent_newton(curve, Ks):
    """Solve the defining system at each K from the K = infinity solution."""
    system = L._system(L._activation(curve.activation), curve.kind)
    if curve.kind == "fold":
        system.ell = curve.ell
    values, misses = {}, 0
    for K in Ks:
        eps = 1.0 / K

        def equations(z, eps=eps):
            return system.residual(z, eps), system.jacobian(z, eps)

        try:
            z = L._newton(equations, curve.unknowns[0], what="independent")
        except (L.LimitError, ValueError):
            misses += 1
            continue
        values[K] = float(system.alpha_scaled(z)) * K**curve.alpha_exponent
    return values, misses


def worst(values, traced):
    """Return the largest relative difference over the K present in both."""
    common = [K for K in values if K in traced]
    if not common:
        return math.nan
    return max(abs(values[K] - traced[K]) / traced[K] for K in common)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="number of K values")
    parser.add_argument("--K-max", type=int, default=10000, help="largest K")
    parser.add_argument(
        "--activation",
        nargs="+",
        default=["relu", "erf"],
        help="activations to benchmark (default: relu erf)",
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    Ks = sorted({round(K) for K in np.geomspace(2, args.K_max, args.count * 3)})
    # Keep `count` values, spread over the range.
    Ks = [Ks[i] for i in np.linspace(0, len(Ks) - 1, args.count).astype(int)]
    print(f"{len(Ks)} values of K from {Ks[0]} to {Ks[-1]}")
    header = (
        f"{'activation':<10} {'kind':<13} {'trace s':>8} {'points':>6} "
        f"{'N Newton from trace s':>22} {'N independent Newton s':>23} {'misses':>6} "
        f"{'max rel diff':>12} {'N solve s':>10} {'misses':>6} {'max rel diff':>12}"
    )
    print(header)
    for activation in args.activation:
        curves, trace_seconds = {}, {}
        for kind in L.CRITICAL_KINDS:
            t0 = time.perf_counter()
            curves[kind] = L.trace_critical_curve(activation, kind)
            trace_seconds[kind] = time.perf_counter() - t0

        # Fixed-K analyses, one per K, shared by the three kinds.
        t0 = time.perf_counter()
        found = {kind: {} for kind in L.CRITICAL_KINDS}
        for K in Ks:
            try:
                result = rs.solve(
                    rs.SpecializationProblem(activation, K), alpha_range(activation, K)
                )
            except (RuntimeError, ValueError, ArithmeticError):
                continue
            for point in result.critical_points:
                if point.kind in found and K not in found[point.kind]:
                    found[point.kind][K] = point.alpha
        solve_seconds = time.perf_counter() - t0

        for kind, curve in curves.items():
            eps_end = curve.eps[-1]
            reachable = [K for K in Ks if 1.0 / K <= eps_end]
            t0 = time.perf_counter()
            traced = {K: curve.solve_at(K).alpha for K in reachable}
            from_trace_seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            newton, newton_misses = independent_newton(curve, Ks)
            newton_seconds = time.perf_counter() - t0

            solved = found[kind]
            # For K = 2 the fold and the equal-F point do not exist (they merge
            # with the branch point), so the solve cannot miss them there.
            expected = [K for K in Ks if K > 2 or kind == "branch_point"]
            solve_misses = sum(1 for K in expected if K not in solved)
            print(
                f"{activation:<10} {kind:<13} {trace_seconds[kind]:>8.2f} "
                f"{len(curve.eps):>6} {from_trace_seconds:>22.2f} "
                f"{newton_seconds:>23.2f} "
                f"{newton_misses:>6} {worst(newton, traced):>12.1e} "
                f"{solve_seconds:>10.1f} "
                f"{solve_misses:>6} {worst(solved, traced):>12.1e}"
            )
    print("N solve s is the time of all fixed-K analyses, shared by the three kinds.")


if __name__ == "__main__":
    main()
