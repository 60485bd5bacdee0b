"""What the command line shows besides results: warnings as one line each, progress bars only on a terminal.

A log file or a pipe gets no progress bars (their redraws would fill it); ``--quiet`` hides them on a terminal too,
with the warnings of other libraries. The project's own warnings (a low frame rate, a video too short or too
long) are always shown: they say a result may not mean what it seems.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

_STATE = {"quiet": False}
_PACKAGE = str(Path(__file__).resolve().parent)


def bars_disabled(progress: bool = True) -> bool | None:
    """tqdm's ``disable`` for a bar the caller wants when ``progress``: off when not wanted or ``--quiet``, else
    ``None`` (tqdm's own rule: drawn only when its output is a terminal)."""
    return True if not progress or _STATE["quiet"] else None


def plain_warnings(quiet: bool | None = False) -> None:
    """Show every warning as one line, ``warning: <its first line>``, on stderr (the command line's style,
    instead of Python's ``file:line: Category: ...`` with the source line). With ``quiet``, warnings raised
    outside this package (libraries') are not shown, and no progress bar is drawn (None: as set before)."""
    from tscnn.errors import SpotWarning, one_line

    quiet = _STATE["quiet"] = _STATE["quiet"] if quiet is None else quiet

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        ours = issubclass(category, SpotWarning) or str(filename).startswith(_PACKAGE)
        if ours or not quiet:
            print(f"warning: {one_line(message if isinstance(message, Warning) else Warning(message), 1 << 20)}",
                  file=sys.stderr)
    warnings.showwarning = show
