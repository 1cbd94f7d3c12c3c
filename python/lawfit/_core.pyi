"""Type stub of the compiled CPU module (private; use the lawfit package)."""
from typing import Any, Dict, Optional

import numpy as np

# A call is a few structured arguments (cpp/src/bindings.h, HostCall):
#   data:  {"x": (M, n_inputs) or, with "x_shared": True, (m, n_inputs), "t": (M,),
#           "sigma": (M,) | None, "weights": (M,) | None, "offsets": (P + 1,),
#           "log_residuals": bool}
#   box:   {"p0", "lower", "upper": a row per unit, or with "per_problem": True per problem;
#           "bounds_shared": True: lower and upper one row for all}
#   options: an object with the attributes of lawfit._options.Options
#   units: None (one unit per problem) or {"data_of": (U,), "resample_of": (U,), "seed",
#           "resample_mode": 0-4, "group_of", "n_groups", "fit_t", "fit_r"}
def fit(
    model: str,
    data: Dict[str, Any],
    box: Dict[str, Any],
    options: Any,
    units: Optional[Dict[str, Any]] = None,
    *,
    n_threads: int = 0,
    return_jtj: bool = False,
    engine: str = "auto",
) -> Dict[str, np.ndarray]: ...
def fit_grid(
    model: Any,
    u: np.ndarray,
    t: np.ndarray,
    p0: np.ndarray,
    lower: Optional[np.ndarray],
    upper: Optional[np.ndarray],
    options: Any,
    log_residuals: bool,
    n_threads: int,
    engine: str,
    return_cov: bool = False,
    absolute_sigma: bool = False,
    singular_inf: bool = True,
) -> Optional[Dict[str, np.ndarray]]: ...
def objective(
    model: str,
    data: Dict[str, Any],
    params: np.ndarray,
    options: Any,
    units: Optional[Dict[str, Any]] = None,
    *,
    n_threads: int = 0,
    engine: str = "auto",
) -> np.ndarray: ...
def grid_objective(
    model: str,
    data: Dict[str, Any],
    starts: np.ndarray,
    options: Any,
    units: Optional[Dict[str, Any]] = None,
    *,
    n_threads: int = 0,
    engine: str = "auto",
) -> np.ndarray: ...
# fp32 (float32 arrays in and out; the scalar solve in float): the same arguments.
fit32 = fit
objective32 = objective
def guess_saturating_power_law(lx: np.ndarray, y: np.ndarray, offsets: np.ndarray,
                               coarse: np.ndarray, factors: np.ndarray, n_threads: int = 0,
                               engine: str = "auto") -> np.ndarray: ...
def evaluate_model(
    model: str, p: np.ndarray, x: np.ndarray, log_value: bool = False
) -> tuple[np.ndarray, np.ndarray]: ...
def models() -> list[dict]: ...
def status_table() -> list[tuple[int, str, str]]: ...
def hardware_threads() -> int: ...
def helper_cpus(threads: int) -> list[int]: ...
def call_cpus(threads: int, n_threads: int) -> list[int]: ...
def rouse_helpers(n_threads: int, n: int, points: int) -> None: ...
def engines() -> list[tuple[str, int, bool]]: ...
def auto_engine() -> str: ...

class testing:  # the submodule of hooks for the tests (not the package's interface)
    @staticmethod
    def philox4x32_10(ctr: np.ndarray, k0: int, k1: int) -> np.ndarray: ...
    @staticmethod
    def fail_allocations(count: int) -> None: ...
    @staticmethod
    def bootstrap_counts(seed: int, problems: np.ndarray, resamples: np.ndarray,
                         n: int) -> np.ndarray: ...
    @staticmethod
    def vmath(fn: str, x: np.ndarray, engine: str = "scalar") -> np.ndarray: ...
    @staticmethod
    def stream_fit(model: Any, data: Dict[str, Any], box: Dict[str, Any], options: Any,
                   chunk_units: int, chunk_points: int, slots: int,
                   return_jtj: bool = False
                   ) -> tuple[Dict[str, np.ndarray], list[tuple[str, int, int]]]: ...
