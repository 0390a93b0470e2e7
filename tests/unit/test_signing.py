"""The release log's and the releases' keys: derived from the secret, one per purpose, checked independently."""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from orchestration.partnership.releases import signing

SECRET = b"test-key-" + b"0123456789abcdef" * 3


def test_an_entry_signature_is_the_hmac_of_its_hash_under_a_key_derived_with_its_own_label():
    entry_hash = hashlib.sha256(b"entry").hexdigest()
    derived = hmac.new(SECRET, b"partnership-warehouse release log signing v1", hashlib.sha256).digest()
    assert signing.sign_entry(signing.log_key(SECRET), entry_hash) == hmac.new(derived, entry_hash.encode(), hashlib.sha256).hexdigest()
    assert signing.log_key(SECRET) != SECRET
    assert signing.entry_signed(signing.log_key(SECRET), entry_hash, signing.sign_entry(signing.log_key(SECRET), entry_hash))
    other = signing.log_key(SECRET + b"x")
    assert not signing.entry_signed(other, entry_hash, signing.sign_entry(signing.log_key(SECRET), entry_hash))
    assert not signing.entry_signed(signing.log_key(SECRET), entry_hash, None)


def test_a_manifest_signature_verifies_with_the_public_key_alone_and_fails_for_any_changed_byte():
    manifest = b'{"content_sha256": "ab", "release_date": "2026-11-28"}\n'
    public = signing.public_key_hex(SECRET)
    sig = signing.sign_manifest(SECRET, manifest)
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(bytes.fromhex(sig), manifest)  # the library's own check
    assert signing.manifest_signed(public, manifest, sig)
    assert not signing.manifest_signed(public, manifest.replace(b"ab", b"ac"), sig)
    assert not signing.manifest_signed(signing.public_key_hex(SECRET + b"x"), manifest, sig)
    assert not signing.manifest_signed(public, manifest, "00" * 64)
    assert not signing.manifest_signed("not hex", manifest, sig)
    assert signing.public_key_hex(SECRET) == public, "derived, not random: the same secret gives the same key"
