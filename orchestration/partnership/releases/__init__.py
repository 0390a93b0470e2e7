"""Releases: the sharing protocols, disclosure control, the release engine and its audit.

`publish.release` releases one protocol (the Dagster assets, the CLI and the tests call it),
through `scope` (the rows allowed), `fingerprint` (computed only when an input changed),
`build` (tables and files, with `dictionary`), the independent `audit` package that must pass
before anything leaves, and `log` (the hash-chained release log, written and verified there)."""
