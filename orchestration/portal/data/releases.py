"""Release folders, `releases/<protocol>/<date>/`: their manifests, files, board packs and CSV.

A file is served only if the release's manifest lists it (or it is the release's board pack) and
its real path is inside the release folder: no name from a request reaches the file system
unchecked, and a link planted in the folder leads nowhere."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb

from orchestration.partnership.releases.csv_safety import write_csv
from orchestration.partnership.settings import Settings

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
BOARD_PACK = {"html": "board_pack.html", "pdf": "board_pack.pdf"}


@dataclass(frozen=True)
class Release:
    protocol: str
    date: str
    folder: Path
    manifest: dict

    @property
    def files(self) -> list[str]:
        return sorted(self.manifest.get("files", {}))

    @property
    def tables(self) -> dict[str, int]:
        return dict(self.manifest.get("row_counts", {}))

    def has_board_pack(self) -> bool:
        return all((self.folder / name).is_file() for name in BOARD_PACK.values())


def _protocol_folder(settings: Settings, protocol_id: str) -> Path | None:
    folder = settings.releases_dir / protocol_id
    return folder if re.fullmatch(r"[a-z0-9][a-z0-9-]*", protocol_id) and folder.is_dir() else None


def releases(settings: Settings, protocol_id: str) -> list[Release]:
    """The protocol's published releases, latest first."""
    folder = _protocol_folder(settings, protocol_id)
    if folder is None:
        return []
    out = [release(settings, protocol_id, d.name) for d in folder.iterdir() if DATE.fullmatch(d.name)]
    return sorted((r for r in out if r is not None), key=lambda r: r.date, reverse=True)


def release(settings: Settings, protocol_id: str, date: str) -> Release | None:
    folder = _protocol_folder(settings, protocol_id)
    if folder is None or not DATE.fullmatch(date):
        return None
    manifest = folder / date / "manifest.json"
    if not manifest.is_file():
        return None
    return Release(protocol_id, date, folder / date, json.loads(manifest.read_text()))


def release_file(rel: Release, name: str, also: tuple[str, ...] = ()) -> Path | None:
    """The path of a file the release's manifest lists (or one of `also`), inside its folder."""
    if name not in rel.manifest.get("files", {}) and name not in also:
        return None
    path = (rel.folder / name).resolve()
    if not path.is_relative_to(rel.folder.resolve()) or not path.is_file():
        return None
    return path


def table_csv(rel: Release, table: str) -> Iterator[str] | None:
    """One released table as spreadsheet-safe CSV (csv_safety), in chunks; None if not released."""
    path = release_file(rel, f"parquet/{table}.parquet") if table in rel.tables else None
    if path is None:
        return None

    def chunks() -> Iterator[str]:
        con = duckdb.connect()
        try:
            cur = con.execute("select * from read_parquet(?)", [str(path)])
            columns = [d[0] for d in cur.description]
            header = True
            while True:
                rows = cur.fetchmany(5000)
                if not rows and not header:
                    return
                buf = io.StringIO()
                write_csv(buf, columns, rows)
                text = buf.getvalue()
                yield text if header else text.split("\r\n", 1)[1]
                header = False
                if not rows:
                    return
        finally:
            con.close()

    return chunks()


def data_dictionary(rel: Release) -> str:
    path = release_file(rel, "data_dictionary.md")
    return path.read_text(encoding="utf-8") if path else ""
