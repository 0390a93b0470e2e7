"""How Dagster runs here (the orchestration layer, not domain code): the instance's home and
configuration (`instance`), its event log storage (`event_log`), the in-process night that
`partnership run` launches (`night`) and the UI that `partnership dev` starts (`ui`)."""
