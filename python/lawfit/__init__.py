"""lawfit: fit thousands of scaling laws at once.

Batched Levenberg-Marquardt with robust losses, log-space residuals and bounds, in C++
(``backend="cpu"``), CUDA (``backend="cuda"``, where built and a GPU is present) and an
independent NumPy reference (``backend="numpy"``).

    >>> import lawfit
    >>> r = lawfit.fit("saturating_power_law", x, y)        # y: list / padded / groups
    >>> r.x, r.status, r.to_frame()

a law of one's own in one line, at the built-ins' speed on the CPU:

    >>> chin = lawfit.law("E + A * N**-alpha + B * D**-beta", inputs=["N", "D"])
    >>> r = lawfit.fit(chin, x, y, p0=...)

and drop-in mirrors of ``scipy.optimize.curve_fit`` and ``least_squares``.
"""
from ._backends import backends
from ._result import FitResult
from ._status import Status
from .api import FragileFitWarning, fit
from .grid import Grid, grid
from .bootstrap import BootstrapResult, BootstrapWarning, ComputeOptimal, Estimate, bootstrap
from ._io import load
from ._embed import get_cmake_dir, get_include
from . import _definition  # noqa: F401  (Model pickles by its definition: copyreg)
from .models import Model
from .law import law
from . import library, models
from .scipy_compat import OptimizeWarning, curve_fit, least_squares

__version__ = "0.1.0"

__all__ = [
    "fit",
    "bootstrap",
    "BootstrapResult",
    "BootstrapWarning",
    "Estimate",
    "ComputeOptimal",
    "load",
    "grid",
    "Grid",
    "FragileFitWarning",
    "curve_fit",
    "least_squares",
    "FitResult",
    "Status",
    "Model",
    "law",
    "models",
    "library",
    "backends",
    "OptimizeWarning",
    "get_include",
    "get_cmake_dir",
    "__version__",
]


def __getattr__(name):
    """``lawfit.plot`` on first use: it needs matplotlib (the ``plot`` extra), which
    ``import lawfit`` does not import."""
    if name == "plot":
        import importlib

        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module 'lawfit' has no attribute {name!r}")
