"""The secure zone's DuckDB file: connections, the one-writer lock, the memory limit, and keyed
pseudonyms for direct identifiers."""
