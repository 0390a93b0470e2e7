"""Is the release log as the warehouse wrote it, and each published folder as it was published?

`partnership audit verify` (the operator, holding the secret) checks, besides the hash chain and
each entry's signature (`log.verify_log`): every published folder still on disk against its
manifest (every file's sha256, nothing added but the board pack), each manifest against the
entry that published it (its sha256 is in the signed entry) and its anchor
(the log's head when it was built: an entry of this log), and that no release folder on disk
is missing from the log (a removed last entry leaves its folder behind).

`partnership audit verify-release FOLDER` (a recipient, without the secret) checks a copy: every
file against the manifest, and the manifest's Ed25519 signature with the warehouse's public key
(given once by the operator, by another channel). Without the public key only the files'
agreement with the manifest can be checked, which a forger rewriting both would pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.partnership.releases import signing
from orchestration.partnership.releases.audit.files import (
    BOARD_PACK_FILES,  # written into a folder after publication
)
from orchestration.partnership.warehouse.files import sha256_file

MANIFEST = "manifest.json"


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def manifest_problems(folder: Path) -> list[str]:
    """What in `folder` differs from its manifest: a file changed, missing or added (the board
    pack and the manifest's signature aside), or no readable manifest."""
    folder = Path(folder)
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{folder}: no readable {MANIFEST} ({type(exc).__name__})"]
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()}
    out = [f"{folder}/{name}: missing (listed in the manifest)" for name in sorted(set(files) - present)]
    extra = present - set(files) - {MANIFEST, signing.SIGNATURE_FILE, *BOARD_PACK_FILES}
    out += [f"{folder}/{name}: not in the manifest (added after publication)" for name in sorted(extra)]
    for name in sorted(set(files) & present):
        path = folder / name
        if path.is_symlink() or sha256_file(path) != files[name]:
            out.append(f"{folder}/{name}: differs from the file published (its sha256 is not the manifest's)")
    return out


def folder_problems(rows: list[dict], releases_dir: Path) -> list[str]:
    """Every folder a `published` entry names, still on disk, against its manifest and that entry;
    every release folder on disk against the log."""
    out = []
    hashes = {"0" * 64: 0, **{r["entry_hash"]: r["seq"] for r in rows}}  # an empty log's head is the genesis
    data_dir = Path(releases_dir).parent  # entries name folders relative to the data folder
    published = {}
    for r in rows:
        if r["status"] == "published" and r.get("path"):
            published[str(data_dir / r["path"])] = r  # a folder published again the same day: its latest entry
    named = {str(data_dir / r["path"]) for r in rows if r.get("path")}
    for path, r in sorted(published.items()):
        folder = Path(path)
        if not folder.is_dir():
            continue  # past its retention and purged (ops.retention_log says so)
        out += manifest_problems(folder)
        manifest_file = folder / MANIFEST
        if not manifest_file.is_file():
            continue
        if r.get("manifest_sha256") and sha256_file(manifest_file) != r["manifest_sha256"]:
            out.append(f"{manifest_file}: not the manifest entry {r['seq']} published")
        manifest = json.loads(manifest_file.read_text())
        if manifest.get("content_sha256") != r["content_sha256"]:
            out.append(f"{manifest_file}: its content_sha256 is not the one entry {r['seq']} logged")
        anchor = (manifest.get("anchor") or {}).get("release_log_head")
        if anchor is not None and hashes.get(anchor, r["seq"]) >= r["seq"]:
            out.append(f"{manifest_file}: anchored to release log head {anchor[:16]}…, which is not an entry before "
                       f"entry {r['seq']} in this log (the log was rewritten)")
    root = Path(releases_dir)
    for manifest_file in sorted(root.glob(f"*/*/{MANIFEST}")) if root.is_dir() else []:
        if str(manifest_file.parent) not in named:
            out.append(f"{manifest_file.parent}: a release folder no log entry names (its entry was removed)")
    return out


def verify_release(folder: Path, public_key: str | None = None, secret: bytes | None = None) -> Verdict:
    """A recipient's check of its copy (see the module docstring)."""
    folder = Path(folder)
    verdict = Verdict(problems=manifest_problems(folder))
    sig_file, manifest_file = folder / signing.SIGNATURE_FILE, folder / MANIFEST
    if public_key is None and secret is not None:
        public_key = signing.public_key_hex(secret)
    if not manifest_file.is_file():
        return verdict
    manifest = json.loads(manifest_file.read_text())
    anchor = (manifest.get("anchor") or {}).get("release_log_head")
    if anchor:
        verdict.notes.append(f"anchored to release log head {anchor} (entry {manifest['anchor'].get('release_log_seq')})")
    if public_key is None:
        verdict.notes.append("signature not checked: give the warehouse's public key (--public-key) to check that this "
                             "is the release as published; only the files' agreement with the manifest was checked")
    elif not sig_file.is_file():
        verdict.problems.append(f"{sig_file}: missing, so the manifest cannot be shown to be the warehouse's")
    elif not signing.manifest_signed(public_key, manifest_file.read_bytes(), sig_file.read_text()):
        verdict.problems.append(f"{manifest_file}: its signature does not verify with public key {public_key[:16]}… "
                                "(changed after publication, or not signed by this warehouse)")
    else:
        verdict.notes.append(f"manifest signed by the warehouse's key {public_key[:16]}…")
    return verdict
