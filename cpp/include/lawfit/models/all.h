// models/all.h: every built-in model, and the one list that every backend instantiates.
// Adding a built-in model is: its struct in models/ (every fact Python reads: name,
// parameter and input names, formula, log inputs), its line in LAWFIT_FOR_EACH_MODEL, its
// NumPy twin in python/lawfit/reference/models.py (the independent oracle) and its test spec
// in tests/batches.py.  Python builds lawfit.models from _core.models(); a data-driven
// start or a profile split, where a model has one, is an optional extra in models.py.
#pragma once

#include "broken_power_law.h"
#include "chinchilla.h"
#include "logistic.h"
#include "power_law.h"

#define LAWFIT_FOR_EACH_MODEL(X)        \
  X(::lawfit::models::PowerLaw)           \
  X(::lawfit::models::SaturatingPowerLaw) \
  X(::lawfit::models::Chinchilla)         \
  X(::lawfit::models::ChinchillaLog)      \
  X(::lawfit::models::Kaplan)             \
  X(::lawfit::models::BrokenPowerLaw)     \
  X(::lawfit::models::ExpPowerLaw)        \
  X(::lawfit::models::Logistic)
