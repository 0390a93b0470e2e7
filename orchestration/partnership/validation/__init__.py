"""Judging a delivered file against its contract: reading it as text, the row rules (pandera), the
batch rules (Great Expectations, in a worker process), and the one engine the night and
`partnership check` both call."""
