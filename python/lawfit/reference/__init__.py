"""lawfit.reference: the independent NumPy oracle for lawfit's compiled solver.

This subpackage re-implements, in plain vectorised NumPy and from the written specification
alone (the "The algorithm" comment at the top of cpp/include/lawfit/lm.h), everything the
C++ core computes:

* :data:`MODELS` -- the eight built-in models with analytic Jacobians, in linear and log
  form (:mod:`lawfit.reference.models`);
* :func:`solve` -- the batched, bounded, robust Levenberg-Marquardt over any residual
  function (:mod:`lawfit.reference.lm`);
* :func:`fit_packed` -- the packed ragged-batch contract of ``lawfit._core.fit``.

It exists so that tests can compare the compiled core against a second implementation that
shares no code with it: agreement to rounding (parameters to ~1e-10 relative, identical
statuses and evaluation counts on well-posed problems) is the expected outcome, and a
disagreement points at a bug in one of the two, or at an ambiguity in the spec.  It is meant
to be read, not to be fast; it depends on NumPy only.
"""

from .lm import STATUS, fit_packed, objective_packed, solve
from .models import MODELS, RefModel

__all__ = ["MODELS", "RefModel", "STATUS", "solve", "fit_packed", "objective_packed"]
