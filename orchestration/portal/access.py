"""The access log: every page view, partial, action and download, who asked and what they got,
recorded by a middleware (nothing a view forgets), read and exported by the IG lead."""

from __future__ import annotations

import io
from typing import Iterable

from orchestration.partnership.releases.csv_safety import write_csv
from orchestration.portal.models import AccessEvent

# Views whose answer is a file a user takes away.
DOWNLOAD_VIEWS = frozenset({"portal:analyst_download", "portal:analyst_csv", "portal:board_pack",
                            "portal:ig_access_csv", "portal:ig_register_file"})
EXPORT_COLUMNS = ("at", "username", "method", "path", "view", "kind", "status", "ip")


def kind_of(request, view: str) -> str:
    if view in DOWNLOAD_VIEWS:
        return "download"
    if getattr(request, "htmx", False):
        return "partial"
    return "action" if request.method not in ("GET", "HEAD") else "page"


class AccessLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith("/static/"):
            return response
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match else ""
        user = getattr(request, "user", None)
        signed_in = bool(user and user.is_authenticated)
        AccessEvent.objects.create(
            user=user if signed_in else None, username=user.get_username() if signed_in else "",
            method=request.method[:10], path=request.get_full_path()[:2000], view=view[:100],
            kind=kind_of(request, view), status=response.status_code, ip=request.META.get("REMOTE_ADDR") or None)
        return response


def export_csv(events: Iterable[AccessEvent]) -> str:
    """The access log as spreadsheet-safe CSV (a path or user name is data, never a formula)."""
    buf = io.StringIO()
    write_csv(buf, EXPORT_COLUMNS, ([e.at.isoformat(), e.username, e.method, e.path, e.view, e.kind, e.status,
                                     e.ip or ""] for e in events))
    return buf.getvalue()
