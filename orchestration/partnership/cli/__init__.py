"""`partnership`: the command line of the partnership data warehouse.

    partnership demo                       the whole demo: key, deliveries, a night, where outputs are
    partnership generate [--preset small]  write the demo partnership's deliveries into landing/
    partnership run                        run the nightly job now (the job the schedule runs)
    partnership releases                   list published releases and the latest log entry per protocol
    partnership audit verify               check the release log's hash chain
    partnership query --protocol ID "SQL"  read-only SQL on that protocol's latest release only
    partnership contracts sources          rewrite the dbt sources from the contracts
    partnership contracts lint|diff        check contracts; breaking changes between two versions
    partnership check FILE --contract ID   check a file against its contract before sending it
    partnership dev                        the Dagster UI on this data folder
    partnership board-pack --protocol ID [--date D] [--send]   rebuild a board pack from a release

`main` (the parser and error handling) and `entry` (the console script) are in `main`; the
commands, by concern, in `night` (the night, the demo, the UI), `contracts` (data owners' tools)
and `releases` (recipients' and auditors' tools). The night runs through `orchestration.runtime`:
this package never imports Dagster itself.
"""

from orchestration.partnership.cli.main import build_parser, entry, exit_now, main
from orchestration.partnership.cli.night import run_night

__all__ = ["build_parser", "entry", "exit_now", "main", "run_night"]
