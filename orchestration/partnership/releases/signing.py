"""Keys for the release log and the releases, derived from the environment's secret and never stored.

- **The log key** is HMAC-SHA256(pseudonymisation key, a label of its own). Every entry of
  `ops.release_log` carries HMAC(log key, its entry hash): whoever can write the warehouse but
  does not hold the secret cannot edit an entry, re-hash the chain after it, or forge a new
  last entry without `partnership audit verify` noticing.
- **The release key** is an Ed25519 key pair whose private half is derived from the same secret
  (its seed is HMAC-SHA256(secret, another label)). Each release's `manifest.json` is signed
  into `manifest.sig` beside it. The public half (`public_key_hex`, printed by `partnership
  audit verify-release`) is given to a recipient once, by another channel: with it, the
  recipient checks that a copy is what the warehouse published, without holding any secret.

A key derived with one label says nothing about the key of another: the log key cannot be
used to pseudonymise, nor a recipient's pseudonym key to sign.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

LOG_LABEL = b"partnership-warehouse release log signing v1"
RELEASE_LABEL = b"partnership-warehouse release manifest signing v1"
SIGNATURE_FILE = "manifest.sig"


def log_key(secret: bytes) -> bytes:
    return hmac.new(secret, LOG_LABEL, hashlib.sha256).digest()


def sign_entry(key: bytes, entry_hash: str) -> str:
    """An entry's signature: HMAC-SHA256(log key, its entry hash), hex."""
    return hmac.new(key, entry_hash.encode(), hashlib.sha256).hexdigest()


def entry_signed(key: bytes, entry_hash: str, signature: str | None) -> bool:
    return bool(signature) and hmac.compare_digest(sign_entry(key, entry_hash), signature)


def _release_key(secret: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hmac.new(secret, RELEASE_LABEL, hashlib.sha256).digest())


def public_key_hex(secret: bytes) -> str:
    """The release key's public half, for recipients (hex of its 32 raw bytes)."""
    return _release_key(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def sign_manifest(secret: bytes, manifest: bytes) -> str:
    """The Ed25519 signature of a manifest's exact bytes, hex (what `manifest.sig` holds)."""
    return _release_key(secret).sign(manifest).hex()


def manifest_signed(public_hex: str, manifest: bytes, signature_hex: str) -> bool:
    """Whether `signature_hex` is the release key's signature of these bytes."""
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex.strip()))
        key.verify(bytes.fromhex(signature_hex.strip()), manifest)
    except (ValueError, InvalidSignature):
        return False
    return True
