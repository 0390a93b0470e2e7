"""Another account on the same server: what it can read, tried as it would try (tests run as root,
so the attempt is made by a child process that has dropped to `nobody`)."""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
from pathlib import Path

NOBODY, NOGROUP = "nobody", "nogroup"


def reads(path: Path, group: str = NOGROUP) -> bool:
    """Whether `nobody` (with only `group`) can read the file's bytes."""
    proc = subprocess.run(["cat", str(path)], user=NOBODY, group=group, extra_groups=[], capture_output=True)
    return proc.returncode == 0


def open_modes(root: Path, skip: tuple[str, ...] = ()) -> list[str]:
    """Every file and folder under `root` (itself included) that grants anything to group or others,
    as `mode path`, by `lstat` (links are not followed)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if (here / d).relative_to(root).as_posix() not in skip]
        for p in [here] + [here / n for n in filenames]:
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                continue
            if stat.S_IMODE(st.st_mode) & 0o077:
                found.append(f"{stat.S_IMODE(st.st_mode):04o} {p}")
    return found


def traversable_dir() -> Path:
    """A folder every account can enter (but not list), on the same file system as the tests'
    temporary folders: a hard link placed in it exposes a file by its own mode alone."""
    path = Path(tempfile.mkdtemp(prefix="other-account-"))
    os.chmod(path, 0o711)
    return path


def exposed(path: Path, where: Path) -> Path:
    """A hard link to `path` in `where` (same inode, so same owner and mode), for `reads`."""
    link = where / f"{len(list(where.iterdir()))}-{path.name}"
    os.link(path, link)
    return link
