// models/all.h: every built-in model, and the one list that every backend instantiates.
// Adding a model is: a struct in models/, and its name in LAWFIT_FOR_EACH_MODEL.
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
