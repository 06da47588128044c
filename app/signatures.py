"""GitHub's webhook signature: X-Hub-Signature-256 = "sha256=" + HMAC-SHA256(secret, raw body)."""

import hashlib
import hmac

PREFIX = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    return PREFIX + hmac.digest(secret, body, hashlib.sha256).hex()


def claimed_digest(header: str | None) -> bytes | None:
    """The digest a header claims; None for a missing or malformed header."""
    if not header or not header.startswith(PREFIX):
        return None
    try:
        return bytes.fromhex(header[len(PREFIX) :])
    except ValueError:
        return None


def streaming(secret: bytes) -> hmac.HMAC:
    """An HMAC to feed a body as it arrives (OpenSSL's, as hmac.digest is), for `matches`."""
    return hmac.new(secret, digestmod="sha256")


def matches(mac: hmac.HMAC, claimed: bytes) -> bool:
    """Constant-time check of the body fed to `mac` against the claimed digest."""
    return hmac.compare_digest(mac.digest(), claimed)
