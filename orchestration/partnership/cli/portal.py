"""`partnership portal` and the demo's portal accounts. The portal (orchestration/portal) is a
Django site on top of the domain: this module starts it as its own process (its manage commands,
gunicorn) and never imports it, so the domain stays free of Django."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from orchestration.partnership.cli.console import console, err, shown
from orchestration.partnership.settings import Settings, get_settings


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {**os.environ, "PARTNERSHIP_DATA_DIR": str(settings.data_dir), **extra}


def manage(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run one of the portal's management commands (`python -m orchestration.portal ...`)."""
    return subprocess.run([sys.executable, "-m", "orchestration.portal", *args], env=_env(settings, **env),
                          capture_output=True, text=True)


def create_demo_accounts(settings: Settings) -> int:
    """The portal's database brought up to date, and one demo account per role; new passwords are
    printed once (the portal stores only their hashes)."""
    done = manage(settings, "portal_demo_accounts")
    if done.returncode != 0:
        err.print(f"[red]portal:[/] the demo accounts were not created: {shown(done.stderr.strip()[-2000:])}")
        return done.returncode
    console.print(done.stdout.rstrip(), markup=False)
    console.print("  the portal:        make portal  → http://127.0.0.1:8000 (docs/portal.md)")
    return 0


def _ensure_snapshot(settings: Settings) -> None:
    """A first snapshot of `ops` if the portal has none and no run holds the warehouse now (a run
    writes a fresh one when it ends)."""
    from orchestration.partnership.ops.snapshot import snapshot_path, write_ops_snapshot
    from orchestration.partnership.warehouse.connection import holder

    if not snapshot_path(settings).exists() and settings.warehouse_path.exists() and holder(settings.warehouse_path) is None:
        write_ops_snapshot(settings)


def cmd_portal(args: argparse.Namespace) -> int:
    settings = get_settings()
    _ensure_snapshot(settings)
    done = manage(settings, "migrate", "--noinput", "-v", "0")
    if done.returncode != 0:
        err.print(f"[red]portal:[/] migrate failed: {shown(done.stderr.strip()[-2000:])}")
        return done.returncode
    console.print(f"The portal on http://127.0.0.1:{args.port}/ (this machine only; Ctrl-C ends it). "
                  "Behind a reverse proxy with TLS: docs/portal.md.")
    # Loopback only, so plain HTTP: the one place cookies go without `Secure` (portal/settings.py).
    return subprocess.call([sys.executable, "-m", "gunicorn", "orchestration.portal.wsgi:application",
                            "--bind", f"127.0.0.1:{args.port}", "--workers", str(args.workers),
                            "--access-logfile", "-"], env=_env(settings, PORTAL_LOOPBACK_DEV="1"))
