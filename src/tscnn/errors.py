"""The project's error for bad user input; it imports nothing of the project, so any module can raise it.

Convention: the message is one line naming the file (and the row and clip where there is one) and
what is wrong with it; the command line prints ``error: <message>`` and exits with status 2
(``--debug`` shows the traceback instead).
"""

from __future__ import annotations


class DatasetError(ValueError):
    """Bad database input; the message names the file, the clip and what is wrong."""


def one_line(error: BaseException, limit: int = 200) -> str:
    """A short, single-line reason from a library's exception: its first non-empty line (cut at
    ``limit`` characters), or the exception's type name when it has no message."""
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    if not text:
        return type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


class SettingError(ValueError):
    """A setting or option outside its domain; the message starts with the option's name (``--lr: ...``)."""


def option_name(field: str) -> str:
    """The command-line spelling of a setting: ``batch_size`` -> ``--batch-size``."""
    return "--" + field.replace("_", "-")


class SpotWarning(UserWarning):
    """A result that may not mean what it seems: low frame rate, a long video classified as one clip."""
