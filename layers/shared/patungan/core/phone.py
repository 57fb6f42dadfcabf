"""Indonesian phone numbers, validated and normalised to E.164 (+62...) with ``phonenumbers``, Google's
libphonenumber metadata, so number plans are not guessed here (ACC-2)."""

from __future__ import annotations

import re

MAX_PHONE_LENGTH = 40
_COUNTRY_CODE_WITHOUT_PLUS = re.compile(r"^\s*\(?62")


def normalize_indonesian_phone(raw: str, *, mobile_only: bool = True) -> str:
    """``0812-3456-789``, ``62812...`` or ``+62 812...`` → ``+62812...``; a number that is not a valid Indonesian
    one (or, with ``mobile_only``, not a mobile one: WhatsApp and e-wallets need it) raises ValueError."""
    # Imported here: it costs ~20 ms to import, paid only by the handlers that read a phone (issue 8 cold start).
    import phonenumbers

    if len(raw) > MAX_PHONE_LENGTH:
        raise ValueError(f"a phone number has at most {MAX_PHONE_LENGTH} characters")
    # "62812..." is the country code written without its plus, as people copy it from WhatsApp.
    written = f"+{raw.strip()}" if _COUNTRY_CODE_WITHOUT_PLUS.match(raw) else raw
    for text in dict.fromkeys((written, raw)):
        try:
            number = phonenumbers.parse(text, "ID")
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number) and phonenumbers.region_code_for_number(number) == "ID":
            kind = phonenumbers.number_type(number)
            mobile = kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
            if mobile_only and not mobile:
                raise ValueError("not an Indonesian mobile number")
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise ValueError("not a valid Indonesian phone number (+62…)")
