"""The agreement register: each data sharing protocol as a page its information governance lead signs off."""
