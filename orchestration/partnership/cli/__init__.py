"""`partnership`: the command line of the partnership data warehouse.

    partnership demo                       the whole demo: key, deliveries, a night, where outputs are
    partnership generate [--preset small]  write the demo partnership's deliveries into landing/
    partnership run                        run the nightly job now (the job the schedule runs)
    partnership releases                   which protocols an analyst may use, their releases, the latest log entries
    partnership audit verify               check the release log's hash chain
    partnership query --protocol ID "SQL"  read-only SQL on that protocol's latest release only
    partnership contracts sources          rewrite the dbt sources from the contracts
    partnership contracts lint|diff        check contracts; breaking changes between two versions
    partnership check FILE --contract ID   check a file against its contract before sending it
    partnership dev [--port P]             the Dagster UI on this data folder
    partnership portal [--port 8000]       the partnership portal on this machine (docs/portal.md)
    partnership board-pack --protocol ID [--date D] [--send]   rebuild a board pack from a release
    partnership register [--date D]        the agreement register: a page per protocol, and an index
    partnership register hash FILE         the sha256 of a protocol's signed text (for a new signature)
    partnership register data-items ID     a protocol's data items as the contracts and models say now

`main` (the parser and error handling) and `entry` (the console script) are in `main`; the
commands, by concern, in `night` (the night, the demo, the UI), `contracts` (data owners' tools)
`releases` (recipients' and auditors' tools)
and `register` (the information governance lead's). The night runs through `orchestration.runtime`:
this package never imports Dagster itself.
"""

from orchestration.partnership.cli.main import build_parser, entry, exit_now, main
from orchestration.partnership.cli.night import run_night

__all__ = ["build_parser", "entry", "exit_now", "main", "run_night"]
