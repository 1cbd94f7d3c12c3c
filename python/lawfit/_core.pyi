"""Type stub of the compiled CPU module (private; use the lawfit package)."""
from typing import Optional

import numpy as np

def fit(
    model: str,
    x: np.ndarray,
    t: np.ndarray,
    sigma: Optional[np.ndarray],
    weights: Optional[np.ndarray],
    offsets: np.ndarray,
    p0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    log_residuals: bool,
    loss: str,
    f_scale: float,
    ftol: float,
    xtol: float,
    gtol: float,
    max_nfev: int,
    initial_damping: float,
    n_threads: int,
    return_jtj: bool,
    engine: str = "auto",
    data_of: Optional[np.ndarray] = None,
    resample_of: Optional[np.ndarray] = None,
    seed: int = 0,
    box_per_problem: bool = False,
    resample_mode: int = 0,
    group_of: Optional[np.ndarray] = None,
    n_groups: Optional[np.ndarray] = None,
    fit_t: Optional[np.ndarray] = None,
    fit_r: Optional[np.ndarray] = None,
    x_shared: bool = False,       # x: one problem's inputs, shared by all (CPU only)
    bounds_shared: bool = False,  # lower, upper: one row, shared by all (CPU only)
) -> dict[str, np.ndarray]: ...
def objective(
    model: str,
    x: np.ndarray,
    t: np.ndarray,
    sigma: Optional[np.ndarray],
    weights: Optional[np.ndarray],
    offsets: np.ndarray,
    params: np.ndarray,
    *,
    data_of: Optional[np.ndarray] = None,
    log_residuals: bool,
    loss: str,
    f_scale: float,
    n_threads: int = 0,
    resample_of: Optional[np.ndarray] = None,
    seed: int = 0,
    resample_mode: int = 0,
    group_of: Optional[np.ndarray] = None,
    n_groups: Optional[np.ndarray] = None,
    fit_t: Optional[np.ndarray] = None,
    fit_r: Optional[np.ndarray] = None,
) -> np.ndarray: ...
# fp32 (float32 arrays in and out; the scalar solve in float): the same arguments.
fit32 = fit
objective32 = objective
def guess_saturating_power_law(lx: np.ndarray, y: np.ndarray, offsets: np.ndarray,
                               coarse: np.ndarray, factors: np.ndarray, n_threads: int = 0,
                               engine: str = "auto") -> np.ndarray: ...
def philox4x32_10(ctr: np.ndarray, k0: int, k1: int) -> np.ndarray: ...
def fail_allocations(count: int) -> None: ...
def bootstrap_counts(seed: int, problems: np.ndarray, resamples: np.ndarray,
                     n: int) -> np.ndarray: ...
def evaluate_model(
    model: str, p: np.ndarray, x: np.ndarray, log_value: bool = False
) -> tuple[np.ndarray, np.ndarray]: ...
def models() -> list[dict]: ...
def status_table() -> list[tuple[int, str, str]]: ...
def hardware_threads() -> int: ...
def helper_cpus(threads: int) -> list[int]: ...
def rouse_helpers(n_threads: int, n: int, points: int) -> None: ...
def engines() -> list[tuple[str, int, bool]]: ...
def auto_engine() -> str: ...
def vmath(fn: str, x: np.ndarray, engine: str = "scalar") -> np.ndarray: ...
