"""`python -m orchestration.partnership.cli`: the `partnership` command."""

from orchestration.partnership.cli.main import entry

entry()
