"""Where the command writes: results on standard output, errors and waits on standard error.

Rich reads `[...]` in a printed string as markup and `:name:` as an emoji. Text that came from
outside (a delivery's file, column and rule names, values, SQL results, error messages naming
them) goes through `shown` (inside a string with markup of our own) or `text` (a table cell,
a title), so it is printed as it is: a column named `[/x]` is not a closing tag, and
`[link=…]` makes no hidden link; and control characters are shown escaped (`\\x1b`), so an
escape sequence in a delivered value never moves the cursor or clears the screen.
"""

from __future__ import annotations

import re

from rich.console import Console
from rich.markup import escape
from rich.text import Text

console = Console(highlight=False, emoji=False)
err = Console(stderr=True, highlight=False, emoji=False)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _visible(value: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def shown(value: object) -> str:
    """`value` as literal text inside a string printed with markup."""
    return escape(_visible(str(value)))


def text(value: object) -> Text:
    """`value` as a renderable that is never read as markup (None as empty)."""
    return Text("" if value is None else _visible(str(value)))


class CliError(Exception):
    """A usage error: printed as one line, exit code 2."""
