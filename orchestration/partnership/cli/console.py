"""Where the command writes: results on standard output, errors and waits on standard error."""

from __future__ import annotations

from rich.console import Console

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class CliError(Exception):
    """A usage error: printed as one line, exit code 2."""
