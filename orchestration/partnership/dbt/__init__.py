"""What dbt needs around it: its environment, the place seeds, the manifest, which part of the
project a night builds, and the dbt sources written from the contracts."""
