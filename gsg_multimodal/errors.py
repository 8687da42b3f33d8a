"""Errors a user can cause, reported as one line instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input: config, data, checkpoint or command line.

    The message must name the problem and the fix in one line; the CLI prints it
    as ``error: <message>`` and exits with status 2.
    """
