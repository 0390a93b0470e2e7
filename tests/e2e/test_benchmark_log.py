"""The benchmark reads how long each dbt command took from a real night's log.

`make bench` splits the dbt step into its dbt commands by the lines Dagster logs around them;
when the command line changed (global options before the command), the split silently became
empty. Checked on the session's demo night, a first night: a full build, then the docs."""

from __future__ import annotations

from benchmarks.run import dbt_commands


def test_the_benchmark_finds_each_dbt_command_of_a_night_in_its_log(demo_night):
    settings, _ = demo_night
    logs = sorted((settings.data_dir / "logs").glob("night-*.log"))
    assert logs, "the night wrote no log"
    commands = dbt_commands(logs[-1])
    assert [c for c, _ in commands] == ["build", "docs generate"]
    assert all(0 < seconds < 600 for _, seconds in commands)
