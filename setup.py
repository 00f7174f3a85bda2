"""Build the Cython extension; all other metadata lives in pyproject.toml."""

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "reluspec._kernels",
        ["src/reluspec/_kernels.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        # -fno-fast-math keeps IEEE semantics, which the ulp-level accuracy of
        # the kernels relies on. The other two change no result: without
        # errno, sqrt compiles to a SIMD instruction, and without traps, GCC
        # may evaluate both sides of a selection, which the SIMD loops of the
        # fast path need on processors without AVX-512 masks.
        extra_compile_args=[
            "-O3",
            "-fno-fast-math",
            "-fno-math-errno",
            "-fno-trapping-math",
        ],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )
)
