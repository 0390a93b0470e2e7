"""The portal's pages against the 300 ms target: every page of every role, at the 95th percentile.

    .venv/bin/python -m benchmarks.portal [--data-dir DIR] [--repeat 20] [--target-ms 300]

DIR is a data folder after a night (default: the county night `make bench` ran last in `$PARTNERSHIP_BENCH_DIR` (`night-county-42-x16` or
`night-county-42`), if there is one, else `PARTNERSHIP_DATA_DIR`). The
portal gets a scratch database in a temporary folder (the data folder's own portal database is not
touched), an account per role scoped to the partnership's busiest agency and to each protocol, and
then each page is requested `--repeat` times through Django's full request handling (middleware,
sessions, the access log, templates) in this process. Downloads (files of a release) are timed
and shown but are not pages. Writes the ops snapshot first if the folder has none. Exit 1 when a
page's 95th percentile is over the target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from orchestration.partnership.settings import PROJECT_ROOT

PASSWORD = "benchmark password 0123456789"


def default_data_dir() -> Path:
    bench = Path(os.environ.get("PARTNERSHIP_BENCH_DIR") or Path(tempfile.gettempdir()) / "partnership-bench")
    # The county night `make bench` ran last: at 25.6 M rows (x16) or the preset's own volume.
    nights = [n for n in (bench / "night-county-42-x16", bench / "night-county-42") if (n / "warehouse.duckdb").exists()]
    if nights:
        return max(nights, key=lambda n: (n / "warehouse.duckdb").stat().st_mtime)
    return Path(os.environ.get("PARTNERSHIP_DATA_DIR") or PROJECT_ROOT / "data")


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def setup(data_dir: Path, scratch: Path):
    os.environ["PARTNERSHIP_DATA_DIR"] = str(data_dir)
    os.environ["PORTAL_DATABASE"] = str(scratch / "portal.sqlite3")
    os.environ["PORTAL_SECRET_KEY"] = "benchmark-only-" + "x" * 40
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestration.portal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from orchestration.partnership.ops.snapshot import snapshot_path, write_ops_snapshot
    from orchestration.partnership.settings import get_settings

    if not snapshot_path(get_settings()).exists():
        write_ops_snapshot(get_settings())


def pages(settings) -> list[tuple[str, str, str, bool]]:
    """(role, scope, url, is_download) of every page and download of the partnership."""
    import duckdb

    from orchestration.partnership.ops.snapshot import snapshot_path
    from orchestration.portal import catalogue
    from orchestration.portal.data import releases as rel

    con = duckdb.connect(str(snapshot_path(settings)), read_only=True)
    try:
        agency, delivery = con.execute(
            """select agency, max(delivery_id) from deliveries where agency = (
                 select agency from deliveries group by agency order by count(*) desc, sum(rows_read) desc limit 1)
               group by agency""").fetchall()[0]
    finally:
        con.close()
    out = [("data_owner", agency, f"/owner/{agency}/", False),
           ("data_owner", agency, f"/owner/{agency}/deliveries/{delivery}/", False),
           ("data_owner", agency, f"/owner/{agency}/upload/", False)]
    for pid in catalogue.protocols():
        found = rel.releases(settings, pid)
        if not found:
            continue
        r = found[0]
        base = f"/analyst/{pid}/{r.date}/"
        out += [("analyst", pid, f"/analyst/{pid}/", False), ("analyst", pid, base, False)]
        for table in r.tables:
            out += [("analyst", pid, f"{base}models/{table}/", False), ("analyst", pid, f"{base}csv/{table}.csv", True)]
        if pid in catalogue.board_protocols() and r.has_board_pack():
            out += [("board_member", pid, f"/board/{pid}/", False),
                    ("board_member", pid, f"/board/{pid}/{r.date}/pack.html", True)]
    out += [("ig_lead", "", u, False) for u in ("/ig/", "/ig/access/", "/ig/exclusions/")]
    out += [("ig_lead", "", "/ig/access.csv", True), ("operator", "", "/operator/", False), ("", "", "/", False)]
    return out


def measure(repeat: int) -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from orchestration.partnership.settings import get_settings
    from orchestration.portal.models import Membership

    settings = get_settings()
    user = get_user_model().objects.create_user(username="bench", password=PASSWORD)
    targets = pages(settings)
    for role, scope, _, _ in targets:
        if role:
            Membership.objects.get_or_create(user=user, role=role, scope=scope)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    results = []
    for _, _, url, download in targets:
        samples, cpu = [], []
        for _ in range(repeat):
            t, c = time.perf_counter(), time.process_time()
            response = client.get(url)
            size = sum(len(c) for c in response.streaming_content) if response.streaming else len(response.content)
            samples.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{url}: {response.status_code}")
        results.append({"url": url, "download": download, "p95_ms": p95(samples),
                        "median_ms": statistics.median(samples), "cpu_p95_ms": p95(cpu), "bytes": size})
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--target-ms", type=float, default=300.0)
    a = ap.parse_args(argv)
    data_dir = (a.data_dir or default_data_dir()).resolve()
    if not (data_dir / "warehouse.duckdb").exists():
        raise SystemExit(f"{data_dir}: no night has run there (no warehouse.duckdb)")
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as scratch:
        setup(data_dir, Path(scratch))
        results = measure(a.repeat)
    print(f"portal pages on {data_dir} ({a.repeat} requests each; target p95 <= {a.target_ms:.0f} ms for pages)")
    print(f"{'p95 ms':>8} {'median':>8} {'cpu p95':>8} {'bytes':>10}  page  (cpu: this process's CPU time, "
          "which other work on the machine does not inflate)")
    slow = []
    for r in results:
        mark = "  (download)" if r["download"] else ""
        print(f"{r['p95_ms']:8.1f} {r['median_ms']:8.1f} {r['cpu_p95_ms']:8.1f} {r['bytes']:10d}  {r['url']}{mark}")
        if not r["download"] and r["p95_ms"] > a.target_ms:
            slow.append(r["url"])
    pages_only = [r["p95_ms"] for r in results if not r["download"]]
    print(f"slowest page p95: {max(pages_only):.1f} ms; " + (f"over target: {', '.join(slow)}" if slow else "all within target"))
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
