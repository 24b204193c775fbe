"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class UserError(Exception):
    """Bad input from the user: names the file or option and what was expected.

    The CLI prints ``error: <message>`` on one line and exits with status 2,
    so anything raised as a ``UserError`` must already read well on its own.
    """


def first_line(exc: BaseException) -> str:
    """An exception as ``Type: first line of its message``, for a one-line error (decoders write paragraphs)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
