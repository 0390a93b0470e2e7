"""Django's SQLite backend, creating the database file readable by its owner alone.

SQLite creates a missing file with the process's umask; the portal's accounts and access log
must not be readable by another account on the server, so the file is made first, mode 0600, in
an owner-only folder (SQLite gives its journal files the database file's mode)."""

import os
from pathlib import Path

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        name = str(conn_params.get("database", ""))
        if name and name != ":memory:" and not name.startswith("file:"):
            path = Path(name)
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(path, 0o600)
        return super().get_new_connection(conn_params)
