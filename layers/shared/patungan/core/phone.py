"""Indonesian phone numbers, validated and normalised to E.164 (+62...) (ACC-2)."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"\d+")


def normalize_indonesian_phone(raw: str) -> str:
    """``0812-3456-789``, ``62812...`` or ``+62 812...`` → ``+62812...``; anything else raises ValueError."""
    digits = "".join(_DIGITS.findall(raw))
    if raw.strip().startswith("+") and not digits.startswith("62"):
        raise ValueError("only Indonesian numbers (+62) are accepted")
    if digits.startswith("62"):
        national = digits[2:]
    elif digits.startswith("0"):
        national = digits[1:]
    else:
        raise ValueError("an Indonesian phone number starts with 0, 62 or +62")
    if not national.startswith("8") or not 8 <= len(national) <= 12:
        raise ValueError("not a valid Indonesian mobile number")
    return f"+62{national}"
