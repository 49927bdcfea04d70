"""Errors that end a command with one line and exit status 2."""


class RunError(RuntimeError):
    """A run could not start or go on (unreadable checkpoint, non-finite loss, ...)."""
