"""Opaque, time-sortable identifiers (ULID layout: 48-bit ms time + 80 random bits, Crockford base32)."""

from __future__ import annotations

import hashlib
import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_ulid() -> str:
    millis = time.time_ns() // 1_000_000
    randomness = int.from_bytes(os.urandom(10), "big")
    return _encode(millis, 10) + _encode(randomness, 16)


def new_id(prefix: str) -> str:
    """A new id such as ``prd_01JD...``: the prefix says what it identifies."""
    return f"{prefix}_{new_ulid().lower()}"


def keyed_id(prefix: str, *parts: str) -> str:
    """The same id for the same parts (a client's Idempotency-Key and who sent it): a retried request names
    the item it wrote before, so a conditional put refuses to write it twice."""
    return f"{prefix}_{hashlib.sha256(chr(31).join(parts).encode()).hexdigest()[:26]}"
