"""What every role's views share: the settings of this request, and files as downloads."""

from __future__ import annotations

from pathlib import Path

from django.http import FileResponse

from orchestration.partnership.settings import Settings, get_settings

# A served document (a board pack, the register) may style itself but runs nothing and loads nothing.
DOCUMENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def data() -> Settings:
    return get_settings()


def download(path: Path, name: str | None = None, inline: bool = False) -> FileResponse:
    response = FileResponse(open(path, "rb"), as_attachment=not inline, filename=name or path.name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


def document(path: Path) -> FileResponse:
    """An HTML or PDF document shown in the browser, under a policy that lets it run nothing."""
    response = download(path, inline=True)
    response._csp_exempt = True  # django-csp: this response carries its own, stricter policy
    response["Content-Security-Policy"] = DOCUMENT_CSP
    return response
