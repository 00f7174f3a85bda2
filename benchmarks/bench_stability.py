"""Time the full-space stability of one site-symmetric state, block against dense.

For each activation and K, the specialised (R > S) local minimum of the
site-symmetric free energy at alpha = ALPHA[activation] is found first. Then
the run times

* the block method: :func:`reluspec.analysis.stability.full_space_stability`
  (closed-form symmetry blocks, O(1) in K), best of ``--repeat`` runs;
* the dense method, for K <= ``--dense-max``: build
  :func:`reluspec.theory.full_hessian.full_free_energy_hessian`
  (K^2 + K (K - 1) / 2 rows) and take all its eigenvalues with
  ``numpy.linalg.eigvalsh``, best of ``max(1, repeat // 10)`` runs;

and reports the number of unstable directions from both and the largest
difference between the sorted spectra, relative to the largest eigenvalue.

Usage: ``PYTHONPATH=src python benchmarks/bench_stability.py [--repeat N]``
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np

import reluspec as rs
from reluspec.analysis.stability import full_space_stability
from reluspec.order_parameters import symmetric_matrices
from reluspec.theory.full_hessian import full_free_energy_hessian

ALPHA = {"relu": 10.0, "erf": 80.0}
SIZES = (10, 20, 40, 100, 1000)


def best_time(function, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def dense_spectrum(activation, R, Q, alpha) -> np.ndarray:
    """Build the dense full-space Hessian and return all its eigenvalues."""
    return np.linalg.eigvalsh(full_free_energy_hessian(activation, R, Q, alpha))


def specialised_state(name: str, K: int, alpha: float) -> np.ndarray:
    problem = rs.SpecializationProblem(name, K)
    return problem.local_minimum(np.array([0.9, 0.0, 0.0]), alpha)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=50, help="runs of the block method"
    )
    parser.add_argument(
        "--dense-max", type=int, default=40, help="largest K for the dense method"
    )
    args = parser.parse_args()

    print(
        "| activation | K | alpha | R, S, C | block (ms) | dense (ms) | speed-up "
        "| n_unstable block / dense | max spectrum difference |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in ("relu", "erf"):
        activation = rs.activation(name)
        alpha = ALPHA[name]
        for K in SIZES:
            R, S, C = specialised_state(name, K, alpha)
            stability = full_space_stability(activation, R, S, C, alpha, K)
            block = partial(full_space_stability, activation, R, S, C, alpha, K)
            block_seconds = best_time(block, args.repeat)
            dense_text = speedup = difference = "-"
            counts = f"{stability.n_unstable} / -"
            if K <= args.dense_max:
                Rm, Qm, _ = symmetric_matrices(R, S, C, K)
                dense = partial(dense_spectrum, activation, Rm, Qm, alpha)
                dense_seconds = best_time(dense, max(1, args.repeat // 10))
                values = dense()
                blocks = np.sort(
                    np.concatenate(
                        [
                            np.repeat(b.eigenvalues, b.multiplicity)
                            for b in stability.blocks
                        ]
                    )
                )
                scale = np.max(np.abs(values))
                dense_unstable = int(np.sum(values < -1e-10 * scale))
                dense_text = f"{1e3 * dense_seconds:.3g}"
                speedup = f"{dense_seconds / block_seconds:.3g}"
                counts = f"{stability.n_unstable} / {dense_unstable}"
                difference = f"{np.max(np.abs(blocks - values)) / scale:.1e}"
            print(
                f"| {name} | {K} | {alpha:g} | {R:.4f}, {S:.2e}, {C:.2e} "
                f"| {1e3 * block_seconds:.3f} | {dense_text} | {speedup} | {counts} "
                f"| {difference} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
