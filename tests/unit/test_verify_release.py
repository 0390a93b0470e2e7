"""A recipient's check of its copy: every file against the manifest, the manifest against the
warehouse's public key; each change named."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from orchestration.partnership.releases import signing
from orchestration.partnership.releases.verify import verify_release

SECRET = b"test-key-" + b"0123456789abcdef" * 3


def _copy(folder: Path) -> Path:
    """A release as published: two files, a manifest listing their sha256, its signature."""
    (folder / "parquet").mkdir(parents=True)
    (folder / "parquet" / "events.parquet").write_bytes(b"PAR1 some rows PAR1")
    (folder / "data_dictionary.md").write_text("# columns\n")
    files = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in ("parquet/events.parquet", "data_dictionary.md")}
    manifest = json.dumps({"files": files, "content_sha256": "c" * 64,
                           "anchor": {"release_log_head": "a" * 64, "release_log_seq": 4}}, indent=2).encode()
    (folder / "manifest.json").write_bytes(manifest)
    (folder / "manifest.sig").write_text(signing.sign_manifest(SECRET, manifest))
    return folder


def test_an_untouched_copy_verifies_with_the_public_key_alone(tmp_path):
    verdict = verify_release(_copy(tmp_path / "r"), public_key=signing.public_key_hex(SECRET))
    assert verdict.ok, verdict.problems
    assert any("a" * 64 in n for n in verdict.notes), "the anchor is shown, to compare with the operator's log"


def test_an_edited_file_an_added_file_and_a_removed_file_are_each_named(tmp_path):
    folder = _copy(tmp_path / "r")
    (folder / "parquet" / "events.parquet").write_bytes(b"PAR1 other rows PAR1")
    (folder / "extra.csv").write_text("a\n")
    (folder / "data_dictionary.md").unlink()
    problems = verify_release(folder, public_key=signing.public_key_hex(SECRET)).problems
    assert any("parquet/events.parquet: differs" in p for p in problems)
    assert any("extra.csv: not in the manifest" in p for p in problems)
    assert any("data_dictionary.md: missing" in p for p in problems)


def test_a_forger_who_rewrites_a_file_and_its_manifest_passes_only_without_the_public_key(tmp_path):
    folder = _copy(tmp_path / "r")
    (folder / "parquet" / "events.parquet").write_bytes(b"PAR1 forged PAR1")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["parquet/events.parquet"] = hashlib.sha256(b"PAR1 forged PAR1").hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    unkeyed = verify_release(folder)
    assert unkeyed.ok and any("signature not checked" in n for n in unkeyed.notes)
    keyed = verify_release(folder, public_key=signing.public_key_hex(SECRET))
    assert any("signature does not verify" in p for p in keyed.problems)
    (folder / "manifest.sig").write_text(signing.sign_manifest(SECRET + b"forger", (folder / "manifest.json").read_bytes()))
    assert not verify_release(folder, public_key=signing.public_key_hex(SECRET)).ok, "signed with another key"
