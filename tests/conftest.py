"""Shared pytest configuration: the hypothesis profile of the test suite.

The ``ci`` profile (loaded unless ``HYPOTHESIS_PROFILE`` names another) draws
the same examples on every run, so that a failure reproduces, and has no
deadline, because mpmath references at 50 digits take a variable time.
"""

import os

from hypothesis import settings

settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("explore", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
