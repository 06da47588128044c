"""GitHub's webhook signature: X-Hub-Signature-256 = "sha256=" + HMAC-SHA256(secret, raw body)."""

import hashlib
import hmac

PREFIX = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    return PREFIX + hmac.digest(secret, body, hashlib.sha256).hex()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """Constant-time check of the header against the body; False for a missing or malformed header."""
    if not header or not header.startswith(PREFIX):
        return False
    try:
        claimed = bytes.fromhex(header[len(PREFIX) :])
    except ValueError:
        return False
    # hmac.digest is OpenSSL's one-shot HMAC: the hot path of every delivery.
    return hmac.compare_digest(hmac.digest(secret, body, hashlib.sha256), claimed)
