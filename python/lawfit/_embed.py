"""Where lawfit's C++ core lives, for programs that embed it without Python.

The core is header-only (``lawfit/*.h``, host and device alike); a CMake project finds it with
``find_package(lawfit CONFIG)`` and links ``lawfit::headers``, which carries the include
directory, C++17 and the floating-point flags lawfit's own build uses.  As pybind11's
``get_include()`` and ``get_cmake_dir()`` do, these functions say where an installed wheel keeps
them (``lawfit/include`` and ``lawfit/share/cmake/lawfit``); in a source checkout whose build
has not installed them they point into the checkout (``cpp/include`` and ``cmake``).
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["get_include", "get_cmake_dir"]


def _installed_root() -> Path:
    """The directory the compiled module and its installed data sit in (in an editable
    install, not the Python sources' directory)."""
    from . import _core

    return Path(_core.__file__).resolve().parent


def _checkout_root() -> Path:
    return Path(__file__).resolve().parents[2]


def get_include() -> str:
    """The directory to add to a C++ compiler's include path for ``#include "lawfit/lm.h"``.

    Returns
    -------
    str
        An absolute path holding ``lawfit/lm.h``, ``lawfit/batch.h``, ``lawfit/models/*.h``
        and the other headers of the core.

    Raises
    ------
    FileNotFoundError
        Where neither the installed package nor a source checkout has the headers.

    Examples
    --------
    >>> import lawfit, os
    >>> os.path.exists(os.path.join(lawfit.get_include(), "lawfit", "lm.h"))
    True
    """
    for root in (_installed_root() / "include", _checkout_root() / "cpp" / "include"):
        if (root / "lawfit" / "lm.h").is_file():
            return str(root)
    raise FileNotFoundError("lawfit's C++ headers (lawfit/lm.h) are not installed")


def get_cmake_dir() -> str:
    """The directory holding ``lawfitConfig.cmake``: pass it to CMake as ``-Dlawfit_DIR=...``.

    Returns
    -------
    str
        An absolute path; ``find_package(lawfit CONFIG)`` there defines the targets
        ``lawfit::headers`` and ``lawfit::core`` (the same header-only core).

    Raises
    ------
    FileNotFoundError
        Where neither the installed package nor a source checkout has the CMake package.

    Examples
    --------
    >>> import lawfit, os
    >>> os.path.exists(os.path.join(lawfit.get_cmake_dir(), "lawfitConfig.cmake"))
    True
    """
    for root in (_installed_root() / "share" / "cmake" / "lawfit", _checkout_root() / "cmake"):
        if (root / "lawfitConfig.cmake").is_file():
            return str(root)
    raise FileNotFoundError("lawfit's CMake package (lawfitConfig.cmake) is not installed")
