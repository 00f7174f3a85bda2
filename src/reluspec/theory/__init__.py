"""Theory layer: generalisation error, entropy and the high-temperature free energy.

Pure functions of numbers and arrays, for full order-parameter matrices and
for the site-symmetric ansatz (R, S, C, K).
"""

from .entropy import *  # noqa: F401,F403
from .entropy import __all__ as _entropy_all
from .free_energy import *  # noqa: F401,F403
from .free_energy import __all__ as _free_energy_all
from .generalization import *  # noqa: F401,F403
from .generalization import __all__ as _generalization_all

__all__ = [*_generalization_all, *_entropy_all, *_free_energy_all]
