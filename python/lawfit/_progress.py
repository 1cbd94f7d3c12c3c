"""Progress of long calls: a tqdm bar on stderr (``progress=True``) or a callable
``progress(done, total)``, reported every ``TARGET_S`` seconds of work or so.

A call with progress solves its batch in chunks whose size adapts to the time each takes, so
that a report comes about every ``TARGET_S`` seconds however slow a fit is; the results do not
depend on chunking (every solve unit depends on its own problem alone), so they are the same
bits with progress as without.  Ctrl-C stops the call between two chunks.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Iterator, Optional, Tuple, Union

__all__ = ["Progress", "make_progress"]

# Seconds of work between two reports (a chunk's size is set from the last one's rate).
TARGET_S = 0.25
# Solve units (problems times starts, or resamples) in the first chunk, before any rate is
# known; a chunk grows at most GROWTH-fold over the last one.
FIRST_UNITS = 2048
GROWTH = 8


def check_progress(progress, arg: str = "progress"):
    """``progress`` if it is None, a bool or a callable; else a ValueError naming it."""
    if progress is None or isinstance(progress, (bool, Progress)) or callable(progress):
        return progress
    raise ValueError(f"{arg}: expected True, False, None or a callable progress(done, total), "
                     f"got {progress!r}")


def make_progress(progress: Union[None, bool, Callable[[int, int], None]], total: int,
                  desc: str = "lawfit", unit: str = "fit") -> Optional["Progress"]:
    """A :class:`Progress` for ``progress`` (None where it is None or False).  ``True`` needs
    tqdm (the ``progress`` extra: ``pip install 'lawfit[progress]'``)."""
    progress = check_progress(progress)
    if progress is None or progress is False:
        return None
    if progress is True:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            raise ImportError("progress=True shows a tqdm bar and needs tqdm: pip install "
                              "'lawfit[progress]' (or tqdm), or pass a callable "
                              "progress(done, total)") from None
        bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                   mininterval=0.1)
        return Progress(total, bar=bar)
    return Progress(total, fn=progress)


class Progress:
    """Counts work done out of ``total`` and reports it to a tqdm ``bar`` or a callable
    ``fn(done, total)``.  A context manager: the bar is closed on leaving (an exception,
    Ctrl-C included, leaves it where it stopped)."""

    def __init__(self, total: int, fn: Optional[Callable[[int, int], None]] = None, bar=None):
        self.total, self.fn, self.bar, self.done = int(total), fn, bar, 0

    def set(self, done: int) -> None:
        """Report ``done`` of ``total`` (nothing where it is already so)."""
        done = int(done)
        if done == self.done:
            return
        if self.bar is not None:
            self.bar.update(done - self.done)
        self.done = done
        if self.fn is not None:
            self.fn(done, self.total)

    def advance(self, n: int) -> None:
        self.set(self.done + n)

    def chunks(self, start: int, stop: int, cap: int, cost: int = 1,
               scale: int = 1) -> Iterator[Tuple[int, int]]:
        """Ranges (a, b) covering start:stop, each at most ``cap`` long, sized so that each
        takes about TARGET_S seconds (from the time the last one took, which is the time
        between two yields); ``cost`` solve units per item sizes the first.  After each
        range the work advances by ``scale * (b - a)``."""
        cap = max(1, int(cap))
        size = max(1, min(cap, FIRST_UNITS // max(1, cost)))
        a = start
        while a < stop:
            b = min(stop, a + size)
            t0 = time.perf_counter()
            yield a, b
            dt = time.perf_counter() - t0
            self.advance(scale * (b - a))
            rate = (b - a) / max(dt, 1e-6)
            size = max(1, min(cap, GROWTH * (b - a), int(rate * TARGET_S)))
            a = b

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
