"""The operator's page: the last night as the snapshot and the release report record it, what is
held back and why, whether a run holds the warehouse now, and the Dagster UI."""

from __future__ import annotations

import json

from django.conf import settings as django_settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from orchestration.partnership.warehouse.connection import describe, holder
from orchestration.portal import permissions as perms
from orchestration.portal.data.ops import OpsSnapshot
from orchestration.portal.views.common import data


def _latest_release_report(settings) -> tuple[str, dict]:
    folder = settings.reports_dir / "releases"
    reports = sorted(folder.glob("????-??-??.json")) if folder.is_dir() else []
    if not reports:
        return "", {}
    return reports[-1].stem, json.loads(reports[-1].read_text()).get("protocols", {})


@login_required
def home(request):
    perms.check_user_is_operator(request.user)
    settings = data()
    snap = OpsSnapshot(settings)
    night_date, protocols = _latest_release_report(settings)
    running = holder(settings.warehouse_path)
    return render(request, "portal/operator/home.html", {
        "night_date": night_date, "protocols": sorted(protocols.items()),
        "held": {pid: p for pid, p in protocols.items() if p.get("status") == "blocked"},
        "rejections": snap.standing_rejections(), "snapshot_at": snap.taken_at(),
        "running": describe(running) if running else "", "dagster_url": django_settings.PORTAL_DAGSTER_URL})
