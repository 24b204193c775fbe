"""Progress output that reads well both at a terminal and in a log file.

A live bar redraws itself with carriage returns and colour codes; at a
terminal that is what you want, in a log it is noise. So bars are drawn only on
a stream that is a terminal: Keras's ``fit`` prints one line per epoch instead
(its bar goes to stdout) and tqdm bars (on stderr, so piped stdout stays clean
data) are left out.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm


def keras_verbose(progress: bool) -> int:
    """``verbose`` for ``Model.fit``: 1 (a live bar) on a terminal, 2 (one line per epoch) in a log, 0 when quiet."""
    if not progress:
        return 0
    return 1 if sys.stdout.isatty() else 2


def progress_bar(iterable: Iterable | None = None, *, progress: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm bar on stderr, drawn only when stderr is a terminal (``progress=False``: never)."""
    return tqdm(iterable, file=sys.stderr, disable=None if progress else True, **kwargs)
