"""Owner-only files in the secure zone.

Everything the warehouse writes under the data folder (the warehouse and its WAL, the archive,
linkage's working files, reports, logs, releases, the Great Expectations project, Dagster's
home) is readable and writable by the account that runs it alone: folders 0700, files 0600.
The process's umask is set to 077 before anything is written (`lock_down`), whatever umask the
caller started with; the child processes it starts (dbt, the GX worker, Chromium) inherit it.
Files copied from elsewhere (an archived delivery keeps none of the sender's modes) are given
0600 explicitly.

A release folder is opened to its recipient only when the operator names a group for its
protocol (`PARTNERSHIP_RELEASE_GROUPS`): then its folders are 0750 and its files 0640, owned by
that group. A night that finds the data folder open to other accounts refuses to write
identifiable data into it (`require_private`).
"""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
GROUP_ENV = "PARTNERSHIP_RELEASE_GROUPS"
# What the warehouse keeps directly in the data folder (names, or their beginnings): the warehouse
# and its WAL, lock and spill folder, the archive, linkage's working files, reports, logs,
# releases, Dagster's home, the demo key and the demo's ground truth.
KEPT = ("warehouse.duckdb", "archive", "linkage", "reports", "logs", "releases", "dagster_home", "secrets",
        "demo_truth")


class DataFolderOpen(RuntimeError):
    """The data folder (or something the warehouse keeps in it) can be read or written by other accounts."""


class ReleaseGroupError(ValueError):
    """PARTNERSHIP_RELEASE_GROUPS names a group this machine does not have, or is not `protocol=group, ...`."""


def lock_down() -> None:
    """From now on this process (and what it starts) creates files 0600 and folders 0700."""
    os.umask(PRIVATE_UMASK)


def private_file(path: Path) -> Path:
    """Make an existing file the owner's alone (a copy keeps no modes worth keeping)."""
    os.chmod(path, 0o600)
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def release_groups() -> dict[str, str]:
    """protocol id -> the group that may read its releases, from `PARTNERSHIP_RELEASE_GROUPS`
    (`falls-analysts=falls_team, supporting-families=sf_caseworkers`); empty when unset."""
    value = os.environ.get(GROUP_ENV, "").strip()
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        protocol, sep, group = (s.strip() for s in part.partition("="))
        if not sep or not protocol or not group:
            raise ReleaseGroupError(f"{GROUP_ENV}: {part!r} is not protocol=group "
                                    f"(e.g. falls-analysts=falls_team)")
        out[protocol] = group
    return out


def open_to_others(data_dir: Path) -> list[str]:
    """What in the data folder other accounts could read or change: the folder itself (listing or
    creating: entering it alone is allowed, for a release group to reach its folder) and
    everything the warehouse keeps directly in it (`KEPT`); inside `releases/`, each protocol's
    folder, where a group the operator configured may read. Each as `path (mode)`. The landing
    area (the agencies' drop), the reference data and files of the checkout (data/README.md)
    are not the warehouse's to judge."""
    data_dir = Path(data_dir)
    if not data_dir.exists():
        return []
    found = []
    if _mode(data_dir) & 0o066:
        found.append(f"{data_dir} ({_mode(data_dir):04o})")
    groups = release_groups()
    for child in sorted(data_dir.iterdir()):
        if not child.name.startswith(KEPT):
            continue
        allowed = 0o011 if child.name == "releases" and groups else 0
        if _mode(child) & 0o077 & ~allowed:
            found.append(f"{child} ({_mode(child):04o})")
    releases = data_dir / "releases"
    if releases.is_dir():
        for folder in sorted(releases.iterdir()):
            allowed = 0o050 if folder.name in groups else 0
            if _mode(folder) & 0o077 & ~allowed:
                found.append(f"{folder} ({_mode(folder):04o})")
    return found


def require_private(data_dir: Path) -> None:
    """Refuse (DataFolderOpen) when other accounts can read or change the data folder; then, from
    here on, create everything owner-only (`lock_down`)."""
    lock_down()
    found = open_to_others(data_dir)
    if found:
        raise DataFolderOpen(
            f"the data folder is open to other users: {', '.join(found)}. Nothing identifiable was written. "
            f"Make it the warehouse account's alone (chmod go-rwx on each path named; landing/ may stay as "
            f"the agencies' transfer needs it), then run again (docs/operations.md, Threat model).")


def share_release(folder: Path, protocol_id: str) -> str | None:
    """Open a published release folder to its recipient's group, if the operator named one for the
    protocol: folders 0750, files 0640, group-owned. Otherwise make sure it is the owner's alone.
    Returns the group shared with, or None."""
    group = release_groups().get(protocol_id)
    folder = Path(folder)
    gid = -1
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ReleaseGroupError(f"{GROUP_ENV}: no group {group!r} on this machine (for {protocol_id})") from None
    dir_mode, file_mode = (0o750, 0o640) if group else (0o700, 0o600)
    for path in [folder.parent, folder, *sorted(folder.rglob("*"))]:
        if path.is_symlink():
            continue  # never followed: a link in a release folder is not the warehouse's to share
        if gid >= 0:
            os.chown(path, -1, gid)
        os.chmod(path, dir_mode if path.is_dir() else file_mode)
    return group
