"""The one exception type the CLI turns into a one-line message, and the folder an OSError names when it has no file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


class UserError(Exception):
    """Bad input from the user: names the file or option and what was expected.

    The CLI prints ``error: <message>`` on one line and exits with status 2,
    so anything raised as a ``UserError`` must already read well on its own.
    """


def first_line(exc: BaseException) -> str:
    """An exception as ``Type: first line of its message``, for a one-line error (decoders write paragraphs)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@contextlib.contextmanager
def writing_to(folder: str | os.PathLike) -> Iterator[None]:
    """Attach ``folder`` as the file name of an OSError raised without one, so its one-line error says where.

    A full disk names no file; the CLI prints ``error: <filename>: <strerror>``. The innermost
    folder wins; ``strerror`` keeps the error's own text when it had none.
    """
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.strerror = exc.strerror or str(exc)  # read before the file name changes what str() says
            exc.filename = str(folder)
        raise
