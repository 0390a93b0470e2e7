"""Where the command writes: results on standard output, errors and waits on standard error.

Rich reads `[...]` in a printed string as markup and `:name:` as an emoji. Text that came from
outside (a delivery's file, column and rule names, values, SQL results, error messages naming
them) goes through `shown` (inside a string with markup of our own) or `text` (a table cell,
a title), so it is printed as it is: a column named `[/x]` is not a closing tag, and
`[link=…]` makes no hidden link.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.text import Text

console = Console(highlight=False, emoji=False)
err = Console(stderr=True, highlight=False, emoji=False)


def shown(value: object) -> str:
    """`value` as literal text inside a string printed with markup."""
    return escape(str(value))


def text(value: object) -> Text:
    """`value` as a renderable that is never read as markup (None as empty)."""
    return Text("" if value is None else str(value))


class CliError(Exception):
    """A usage error: printed as one line, exit code 2."""
