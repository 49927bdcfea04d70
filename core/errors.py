"""The project's own input errors: each ends a command with one line and exit status 2.

Anything else (a ValueError from torch, pandas or Lightning, a bug of ours) keeps its traceback,
so an internal error never looks like bad input.
"""

from datamodules.checks import ShapeError
from models.config import OptionError


class ConfigError(ValueError):
    """A bad configuration value; the message is one line and names the fix."""


class UsageError(ValueError):
    """Bad command-line input."""


class RunError(RuntimeError):
    """A run could not start or go on (unreadable checkpoint, non-finite loss, ...)."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message (its class name when it has none), for a one-line
    error that quotes another library's."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# what the command line reports as `ntmbench: error: ...`: a task's shape or option, a model's
# option, a config value, a command-line value, a run that cannot start or go on
INPUT_ERRORS = (ShapeError, OptionError, ConfigError, UsageError, RunError)
