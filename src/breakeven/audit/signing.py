"""Ed25519 keys for audit checkpoints (the ``cryptography`` package).

A private key is given in an environment variable as PEM text or as the base64 of its raw
32 bytes; a public key in a file, PEM or base64 raw. ``breakeven audit keygen`` writes a
pair. Every problem is an ``InputError`` naming the variable or file.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from breakeven.audit.chain import Checkpoint, checkpoint_message, envelope
from breakeven.errors import InputError

__all__ = ["Signer", "generate", "load_public_key", "verifier"]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


class Signer:
    def __init__(self, text: str, where: str) -> None:
        text = text.strip()
        try:
            if text.startswith("-----BEGIN"):
                key = serialization.load_pem_private_key(text.encode(), password=None)
            else:
                key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
        except (ValueError, TypeError) as exc:
            raise InputError(f"not an Ed25519 private key (PEM or base64 of 32 bytes): {exc}",
                             where=where) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise InputError("the signing key must be Ed25519", where=where)
        self._key = key
        self.key_id = key_id(key.public_key())

    def sign(self, seq: int, head: str, ts: float, every: int | None = None) -> str:
        """The ``signature`` cell of a checkpoint: ``v2:EVERY:BASE64`` when the interval
        is signed too, the bare base64 (v1) when ``every`` is None."""
        raw = base64.b64encode(self._key.sign(checkpoint_message(seq, head, ts, every))).decode()
        return raw if every is None else f"v2:{every}:{raw}"


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", where=str(path)) from None
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError) as exc:
        raise InputError(f"not an Ed25519 public key: {exc}", where=str(path)) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError("the public key must be Ed25519", where=str(path))
    return key


def verifier(key: Ed25519PublicKey) -> Callable[[Checkpoint], bool]:
    """A check of a checkpoint's signature (v1 or v2) against ``key``."""

    def check(cp: Checkpoint) -> bool:
        every, raw = envelope(cp.signature)
        try:
            key.verify(base64.b64decode(raw), checkpoint_message(cp.seq, cp.head, cp.ts, every))
            return True
        except (InvalidSignature, ValueError):
            return False

    return check


def generate() -> tuple[str, str]:
    """A new pair: (private key as base64 raw, public key as base64 raw)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    return base64.b64encode(private).decode(), base64.b64encode(
        _raw_public(key.public_key())).decode()
