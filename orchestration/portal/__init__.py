"""The partnership portal: a Django site where each user signs in and sees only their own.

An interface, like the Dagster layer: it imports domain code (`orchestration.partnership`), the
domain never imports it. It keeps accounts, roles, acknowledgements, uploads and the access log in
its own database (SQLite under `<data>/portal/` by default), and reads release folders, reports
and the ops snapshot (`partnership/ops/snapshot.py`); it never opens the warehouse. Who may see
what is `permissions.py`; which changes are allowed at all, `policies.py`. docs/portal.md.
"""
