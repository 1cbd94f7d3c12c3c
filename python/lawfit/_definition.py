"""What rebuilds a model: pickling models, and the model entry of a saved result.

A built-in is its name (``lawfit.models.get(name)`` on load).  A user's law (``lawfit.law``)
is its definition, ``(expression, inputs, params, name, native)``, and is rebuilt by
``lawfit.law`` on load: its compiled form (a ``_core.Law``) and its reference twin are made
again, not copied.  A law traced from a Python function keeps no expression to rebuild it
from; pickling it is a TypeError that says so.

``Model`` pickles through :func:`reduce_model`, registered with :mod:`copyreg` when
``lawfit`` is imported (here, above both ``lawfit.models`` and ``lawfit.law``, so that
neither imports the other's layer).
"""
from __future__ import annotations

import copyreg

from .law import law
from .models import Model, get

__all__ = ["law_definition", "from_definition", "reduce_model"]


def law_definition(model: Model) -> tuple:
    """(expression, inputs, params, name, native): what rebuilds the law ``model`` by
    ``lawfit.law``.  TypeError where the law was defined by a function (its ``formula`` is
    then the function's name, and the expression is not kept): checked by rebuilding it
    from its formula and comparing the generated model structs."""
    name = None if model.name == model.formula else model.name
    native = bool(getattr(model.core, "native", False))
    try:
        again = from_definition(model.formula, model.input_names, model.param_names, name,
                                False)
        same = again.source.struct() == model.source.struct()
    except ValueError:
        same = False
    if not same:
        raise TypeError(f"the law {model.name!r} was defined by a function, whose expression "
                        f"is not kept: it cannot be pickled or saved; define it by its "
                        f"expression string (lawfit.law(\"...\", inputs=...)), or pass it "
                        f"again as lawfit.load(path, model=...)")
    return (model.formula, tuple(model.input_names), tuple(model.param_names), name, native)


def from_definition(expression, inputs, params, name, native) -> Model:
    """A law rebuilt from its definition (the inverse of :func:`law_definition`)."""
    return law(expression, inputs=list(inputs), params=list(params), name=name,
               native=bool(native))


def reduce_model(model: Model):
    """Pickle's reduction of a Model: a built-in by its name, a law by its definition."""
    if not model.is_law:
        return (get, (model.name,))
    return (from_definition, law_definition(model))


copyreg.pickle(Model, reduce_model)
