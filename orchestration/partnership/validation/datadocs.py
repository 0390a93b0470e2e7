"""The Great Expectations Data Docs pages as this project serves them: offline and inert.

GX's page templates fetch Bootstrap, jQuery, bootstrap-table, a date picker, Font Awesome and
Vega from public CDNs, and its Jinja environment escapes nothing in `.j2` templates. So:

- nothing from a delivery reaches GX as text it could render: a delivery is labelled by its id
  and its file name reduced to letters, digits, `._ -` (`safe_label`); the suites are built from
  the contract (trusted), and their frames hold presence flags and typed dates, not values;
- every page is rewritten after GX renders it (`make_offline`): each CDN asset points at a copy
  kept in `datadocs_assets/` (the same files at the same versions, licences in
  `datadocs_assets/licenses/`), installed into the site's `static/vendor/`; Vega is dropped (it
  draws the profiling pages' charts; this project's suites have none), and any other script or
  stylesheet from the network is removed rather than fetched.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

ASSETS = Path(__file__).with_name("datadocs_assets")
VENDOR = ("static", "vendor")

# A CDN address as GX's templates write it -> the vendored file that replaces it ("" = dropped).
LOCAL_COPIES = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker.min.css",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "bootstrap-prefers-dark.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "",
}

_SCRIPT = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?(?P<url>(?:https?:)?//[^\"'\s>]+)[\"']?[^>]*>\s*</script>", re.I)
_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?(?P<url>(?:https?:)?//[^\"'\s>]+)[\"']?[^>]*?/?>", re.I)
_IMG = re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"'](?P<url>(?:https?:)?//[^\"']+)[\"'][^>]*>", re.I)
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]")


def safe_label(label: str) -> str:
    """A run's label as GX may show it: anything but letters, digits, '.', '_', ' ' and '-' becomes
    '_' (GX writes it into pages unescaped)."""
    return _UNSAFE.sub("_", label)


def localise(page: str, prefix: str, images: dict[str, str] | None = None) -> str:
    """A page with every script and stylesheet from the network replaced by its local copy under
    `prefix` (the vendor folder, relative to the page), or removed when there is none; an image
    from the network (GX's logo, fetched with the project's id attached: a tracking pixel) by
    the copy GX ships among its static images (`images`: file name -> path relative to the page),
    or removed."""
    def script(m: re.Match) -> str:
        local = LOCAL_COPIES.get(m.group("url"))
        return f'<script src="{prefix}/{local}"></script>' if local else ""

    def link(m: re.Match) -> str:
        if "stylesheet" not in m.group(0).lower():
            return m.group(0)  # a hyperlink-like <link> (none today): not a fetched asset
        local = LOCAL_COPIES.get(m.group("url"))
        return f'<link rel="stylesheet" href="{prefix}/{local}">' if local else ""

    def image(m: re.Match) -> str:
        name = m.group("url").split("?")[0].rsplit("/", 1)[-1]
        local = (images or {}).get(name)
        return m.group(0).replace(m.group("url"), local) if local else ""

    return _IMG.sub(image, _LINK.sub(link, _SCRIPT.sub(script, page)))


def install_assets(site: Path) -> Path:
    """The vendored files in the site's static/vendor/ (copied when missing or different in size)."""
    vendor = site.joinpath(*VENDOR)
    for src in ASSETS.rglob("*"):
        if src.is_dir():
            continue
        dest = vendor / src.relative_to(ASSETS)
        if not dest.is_file() or dest.stat().st_size != src.stat().st_size:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
    return vendor


def make_offline(site: Path, since_ns: int = 0) -> list[Path]:
    """Rewrite the site's pages written since `since_ns` (a page GX did not touch was rewritten
    when it was written) to use the local copies. Returns the pages changed."""
    site = Path(site)
    if not site.is_dir():
        return []
    if not site.joinpath(*VENDOR).is_dir():
        since_ns = 0  # a site rendered before its pages were made offline: every page
    vendor = install_assets(site)
    shipped = sorted(p.name for p in site.joinpath("static", "images").glob("*") if p.is_file())
    changed = []
    for page in site.rglob("*.html"):
        if page.stat().st_mtime_ns < since_ns or vendor in page.parents:
            continue
        text = page.read_text(encoding="utf-8")
        here = Path(os.path.relpath(site, page.parent)).as_posix()
        new = localise(text, f"{here}/{'/'.join(VENDOR)}", {n: f"{here}/static/images/{n}" for n in shipped})
        if new != text:
            tmp = page.with_name(page.name + ".tmp")
            tmp.write_text(new, encoding="utf-8")
            os.replace(tmp, page)
            changed.append(page)
    return changed
