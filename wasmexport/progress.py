"""Progress display for long steps: a rich status spinner per stage on a terminal.

    from wasmexport.progress import stage
    with stage("Exporting to ONNX"):
        ...

`track(items, "Benchmarking", total=n)` is the same for loops: a progress bar.

A stage shows a spinner with its name and elapsed time while it runs and one
``✓ name (1.2 s)`` line when it ends, on stderr. It does nothing when stderr is not a
terminal (scripts, CI, tests), when the environment sets ``WASMEXPORT_PROGRESS=0``, or
inside ``disabled()``. Stages may nest; only the outermost one shows a spinner.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator

__all__ = ["disabled", "enabled", "set_enabled", "stage", "track"]

logger = logging.getLogger(__name__)

_ENV = "WASMEXPORT_PROGRESS"
_state = threading.local()
_forced: bool | None = None  # set_enabled() overrides the TTY check


def set_enabled(value: bool | None) -> None:
    """Force progress on (True) or off (False), or back to automatic (None: on a TTY)."""
    global _forced
    _forced = value


def enabled() -> bool:
    """Whether a stage would show anything now: forced on, or stderr is a terminal."""
    if getattr(_state, "depth", 0) < 0:
        return False
    if _forced is not None:
        return _forced
    if os.environ.get(_ENV, "").strip() in {"0", "false", "no", "off"}:
        return False
    stream = sys.stderr
    return bool(getattr(stream, "isatty", None) and stream.isatty())


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """No progress output inside this block (in this thread)."""
    saved = getattr(_state, "depth", 0)
    _state.depth = -1
    try:
        yield
    finally:
        _state.depth = saved


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Show a spinner named `name` while the block runs (a no-op when not enabled).

    The stage is always logged at DEBUG with its duration, terminal or not.
    """
    depth = getattr(_state, "depth", 0)
    start = time.perf_counter()
    if depth != 0 or not enabled():
        try:
            yield
        finally:
            logger.debug("%s: %.2f s", name, time.perf_counter() - start)
        return

    from rich.console import Console

    console = Console(stderr=True)
    _state.depth = 1
    ok = False
    try:
        with console.status(f"[bold]{name}[/bold]…", spinner="dots"):
            yield
        ok = True
    finally:
        _state.depth = 0
        took = time.perf_counter() - start
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
        console.print(f"{mark} {name} [dim]({took:.1f} s)[/dim]", highlight=False)
        logger.debug("%s: %.2f s", name, took)


def track(items: Iterable, name: str, *, total: int | None = None) -> Iterator:
    """Iterate over `items`, showing a progress bar named `name` when enabled."""
    if getattr(_state, "depth", 0) != 0 or not enabled():
        yield from items
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    _state.depth = 1
    try:
        columns = (f"[bold]{name}[/bold]", BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())  # fmt: skip
        with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
            yield from bar.track(items, total=total)
    finally:
        _state.depth = 0
