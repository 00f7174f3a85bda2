"""Benchmark the vectorised pair-correlation kernels.

Run from the repository root after building the extension::

    python benchmarks/bench_kernels.py [--n 1000000] [--repeat 7] [--check 20000]

For ReLU and erf units it reports, on ``n`` random covariances:

* the time per covariance of ``Activation.pair`` (validation included) and of
  its gradient and Hessian;
* the ratio to the straightforward numpy expression of the same closed form
  (numpy temporaries, no validation), measured in the same run;
* the ratio to the transcendental calls alone (``np.arctan2`` or
  ``np.arcsin`` and ``np.sqrt`` on ``n`` elements), the floor that any
  implementation of the formula pays;
* the largest error in ulp, against mpmath at 50 digits, on ``check`` of the
  benchmark inputs drawn at random (all of them with ``--check 0``... a value
  of 0 skips the check);
* the cost of one scalar call from Python.

Times are the minimum over ``repeat`` runs, which is the least disturbed by
other load on the machine.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import timeit

import mpmath
import numpy as np

from reluspec.activations import Erf, ReLU

TWO_PI = 2.0 * math.pi


def random_covariances(n: int, seed: int):
    """Return ``n`` covariances with log-uniform variances in [1e-2, 1e2] and
    correlations uniform in [-1, 1], with 1% of them at exactly +-1."""
    rng = np.random.default_rng(seed)
    c11 = 10.0 ** rng.uniform(-2, 2, n)
    c22 = 10.0 ** rng.uniform(-2, 2, n)
    rho = rng.uniform(-1.0, 1.0, n)
    edge = rng.random(n) < 0.01
    rho[edge] = np.sign(rho[edge])
    c12 = rho * np.sqrt(c11) * np.sqrt(c22)
    return c11, c12, c22


def relu_numpy(c11, c12, c22):
    """The ReLU closed form as a plain numpy expression (atan2 form)."""
    r = np.sqrt(np.maximum(c11 * c22 - c12 * c12, 0.0))
    theta = np.arctan2(r, c12)
    return (r + (np.pi - theta) * c12) / TWO_PI


def erf_numpy(c11, c12, c22):
    """The erf closed form as a plain numpy expression."""
    return (2.0 / np.pi) * np.arcsin(c12 / np.sqrt((1.0 + c11) * (1.0 + c22)))


def relu_floor(c11, c12, c22, out):
    """The transcendental calls of the ReLU formula: one sqrt, one atan2."""
    np.sqrt(c11, out=out)
    np.arctan2(c12, c22, out=out)


def erf_floor(c11, c12, c22, out):
    """The transcendental calls of the erf formula: one sqrt, one asin."""
    np.sqrt(c11, out=out)
    np.arcsin(c12 / c22, out=out)


def best_time(function, repeat: int) -> float:
    return min(timeit.repeat(function, number=1, repeat=repeat))


def max_ulp_error(act, c11, c12, c22, values, check: int, seed: int) -> float:
    """Largest error in ulp of ``values`` on a random subset of the inputs."""
    n = c11.shape[0]
    if check <= 0:
        return float("nan")
    rng = np.random.default_rng(seed + 1)
    indices = rng.choice(n, size=min(check, n), replace=False)
    worst = 0.0
    for i in indices:
        reference = act.pair_mp(c11[i], c12[i], c22[i], dps=50)
        if reference == 0:
            error = 0.0 if values[i] == 0 else math.inf
        else:
            spacing = np.spacing(abs(float(reference)))
            error = float(abs(mpmath.mpf(float(values[i])) - reference) / spacing)
        worst = max(worst, error)
    return worst


def scalar_call_time(function, *args) -> float:
    number = 20000
    return min(timeit.repeat(lambda: function(*args), number=number, repeat=5)) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="covariances")
    parser.add_argument("--repeat", type=int, default=7, help="timing runs")
    parser.add_argument(
        "--check", type=int, default=20000,
        help="inputs checked against mpmath (0 skips the check)",
    )
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args()

    c11, c12, c22 = random_covariances(args.n, args.seed)
    out = np.empty(args.n)
    cpus = os.cpu_count()
    print(f"machine: {platform.machine()}, {cpus} logical CPUs, "
          f"{platform.python_implementation()} {platform.python_version()}, "
          f"numpy {np.__version__}")
    print(f"n = {args.n} covariances, best of {args.repeat} runs\n")

    header = (f"{'activation':<10} {'kernel ns':>10} {'numpy ns':>9} "
              f"{'vs numpy':>9} {'floor ns':>9} {'vs floor':>9} "
              f"{'grad ns':>8} {'hess ns':>8} {'max ulp':>8}")
    print(header)
    print("-" * len(header))
    cases = [(ReLU(), relu_numpy, relu_floor), (Erf(), erf_numpy, erf_floor)]
    for act, numpy_form, floor in cases:
        kernel = best_time(lambda: act.pair(c11, c12, c22), args.repeat)
        plain = best_time(lambda: numpy_form(c11, c12, c22), args.repeat)
        bottom = best_time(lambda: floor(c11, c12, c22, out), args.repeat)
        gradient = best_time(lambda: act.pair_gradient(c11, c12, c22), args.repeat)
        hessian = best_time(lambda: act.pair_hessian(c11, c12, c22), args.repeat)
        values = act.pair(c11, c12, c22)
        ulp = max_ulp_error(act, c11, c12, c22, values, args.check, args.seed)
        per = 1e9 / args.n
        print(f"{act.name:<10} {kernel * per:>10.1f} {plain * per:>9.1f} "
              f"{plain / kernel:>8.2f}x {bottom * per:>9.1f} "
              f"{kernel / bottom:>8.2f}x {gradient * per:>8.1f} "
              f"{hessian * per:>8.1f} {ulp:>8.2f}")

    print("\nscalar call from Python (one covariance), microseconds:")
    for act in (ReLU(), Erf()):
        pair = scalar_call_time(act.pair, 1.0, 0.3, 2.0)
        slope = scalar_call_time(act.unit_pair_derivative, 0.3, 1)
        hessian = scalar_call_time(act.pair_hessian, 1.0, 0.3, 2.0)
        print(f"  {act.name:<5} pair {pair * 1e6:.2f}, unit_pair_derivative "
              f"{slope * 1e6:.2f}, pair_hessian {hessian * 1e6:.2f}")
    array_one = scalar_call_time(ReLU().pair, np.array([1.0]), 0.3, 2.0)
    print(f"  relu  pair on 1-element arrays {array_one * 1e6:.2f}")


if __name__ == "__main__":
    main()
