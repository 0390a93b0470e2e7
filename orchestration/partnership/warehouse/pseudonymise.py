"""Keyed pseudonyms (HMAC-SHA256) for direct identifiers, computed inside DuckDB.

The key comes from the environment only (`PARTNERSHIP_PSEUDONYM_KEY`, or a file named by
`PARTNERSHIP_PSEUDONYM_KEY_FILE`); it is never written to the warehouse, logs or releases.
The warehouse keeps a fingerprint (an HMAC of a fixed label) so that a changed key is
caught before it silently breaks linkage between nights.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_ENV = "PARTNERSHIP_PSEUDONYM_KEY"
KEY_FILE_ENV = "PARTNERSHIP_PSEUDONYM_KEY_FILE"
MIN_KEY_BYTES = 32
_BLOCK = 64


class PseudonymKeyError(RuntimeError):
    """No usable key, or not the key the warehouse was built with."""


def load_key() -> bytes:
    value = os.environ.get(KEY_ENV)
    path = os.environ.get(KEY_FILE_ENV)
    if value:
        key = value.strip().encode()
    elif path:
        p = Path(path)
        if not p.is_file():
            raise PseudonymKeyError(f"{KEY_FILE_ENV} names {p}, which does not exist")
        key = p.read_bytes().strip()
    else:
        raise PseudonymKeyError(
            f"no pseudonymisation key: set {KEY_ENV} or {KEY_FILE_ENV} "
            "(at least 32 bytes; `make demo` creates a local demo key)"
        )
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"the pseudonymisation key is {len(key)} bytes; at least {MIN_KEY_BYTES} are required")
    return key


def create_demo_key(path: Path) -> Path:
    """A local random key for the demo only, readable by its owner alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    return path


def fingerprint(key: bytes) -> str:
    return hmac.new(key, b"partnership-warehouse key fingerprint v1", hashlib.sha256).hexdigest()[:16]


def checked_key(con, *, consequence: str, record: bool = False, key: bytes | None = None) -> bytes:
    """The key (`load_key`), only if it is the one the warehouse open on `con` was built with (the
    fingerprint in ops.settings): a changed key would silently give every person new pseudonyms,
    breaking linkage between nights and each recipient's linkage between releases. `consequence`
    ends the error (what was stopped, what to do). `record`: on a writing connection, a warehouse
    without a fingerprint yet records this key's (the first night). `key`: already loaded (else loaded here)."""
    key = load_key() if key is None else key
    fp = fingerprint(key)
    row = con.execute("select value from ops.settings where name = 'key_fingerprint'").fetchall()
    if not row:
        if record:
            con.execute("insert into ops.settings values ('key_fingerprint', ?)", [fp])
    elif row[0][0] != fp:
        raise PseudonymKeyError("the pseudonymisation key differs from the one this warehouse was built with "
                                f"(fingerprint {fp}, expected {row[0][0]}); {consequence}")
    return key


def hmac_pads(key: bytes, context: str = "") -> tuple[bytes, bytes]:
    """Inner and outer padded keys, so DuckDB's sha256 can compute HMAC at load speed.

    `context` derives a separate key per use (e.g. per recipient), so pseudonyms from two
    contexts cannot be joined."""
    if context:
        key = hmac.new(key, context.encode(), hashlib.sha256).digest()
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_sql(value_sql: str, ipad_param: str = "$ipad", opad_param: str = "$opad") -> str:
    """SQL for HMAC-SHA256(key, value) as hex, the pads bound as blob parameters."""
    return f"sha256({opad_param} || unhex(sha256({ipad_param} || encode({value_sql}))))"


def hmac_python(key: bytes, value: str, context: str = "") -> str:
    if context:
        key = hmac.new(key, context.encode(), hashlib.sha256).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def normalise_sql(column: str, kind: str) -> str:
    """Normalise before hashing, so that spacing and case do not split one person in two."""
    col = f'"{column}"'
    if kind == "nhs_number":
        return f"nullif(regexp_replace({col}, '[^0-9]', '', 'g'), '')"
    if kind == "postcode":
        return f"nullif(upper(regexp_replace({col}, '\\s', '', 'g')), '')"
    return f"nullif(lower(trim(regexp_replace(nfc_normalize({col}), '\\s+', ' ', 'g'))), '')"


def normalise(value: str | None, kind: str) -> str | None:
    """The same normalisation as `normalise_sql`, in Python (CLI look-ups, tests)."""
    import re
    import unicodedata

    if value is None:
        return None
    if kind == "nhs_number":
        out = re.sub(r"[^0-9]", "", value)
    elif kind == "postcode":
        out = re.sub(r"\s", "", value).upper()
    else:
        out = re.sub(r"\s+", " ", unicodedata.normalize("NFC", value)).strip().lower()
    return out or None


def identifier_kind(column: str) -> str:
    if column == "nhs_number":
        return "nhs_number"
    if "postcode" in column:
        return "postcode"
    return "text"
