"""How Dagster runs here (the orchestration layer, not domain code): the instance's event log storage
and the in-process night that `partnership run` launches."""
