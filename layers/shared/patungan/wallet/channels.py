"""Where a withdrawal can be paid out (WAL-2): Xendit's payout channel codes for Indonesian banks and
e-wallets, and the account numbers each kind of channel takes.

A client names the bank as Xendit's channel code (``ID_BCA``) or without the country (``BCA``), in any
case; the payout is always sent with the channel code."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from patungan.core.phone import normalize_indonesian_phone

COUNTRY_PREFIX = "ID_"


class ChannelKind(StrEnum):
    BANK = "bank"
    EWALLET = "ewallet"


# Xendit payout channel codes (Indonesia), without the ID_ prefix.
_BANKS = frozenset(
    {
        "BCA",
        "BCA_SYR",
        "BNI",
        "BNI_SYR",
        "BRI",
        "BRI_SYR",
        "MANDIRI",
        "MANDIRI_SYR",
        "BSI",
        "PERMATA",
        "PERMATA_UUS",
        "CIMB",
        "CIMB_UUS",
        "DANAMON",
        "DANAMON_UUS",
        "BTN",
        "BTN_UUS",
        "MAYBANK",
        "MAYBANK_UUS",
        "PANIN",
        "PANIN_SYR",
        "OCBC",
        "OCBC_UUS",
        "MEGA",
        "MEGA_SYR",
        "SINARMAS",
        "SINARMAS_UUS",
        "BJB",
        "BJB_SYR",
        "BUKOPIN",
        "BTPN",
        "JAGO",
        "SEABANK",
        "ALLO",
        "BNC",
        "UOB",
        "HSBC",
        "DBS",
        "CITIBANK",
        "COMMONWEALTH",
        "MUAMALAT",
        "DKI",
        "JATENG",
        "JATIM",
        "BPD_BALI",
        "NOBU",
        "ARTHA",
        "MAYAPADA",
        "MNC_INTERNASIONAL",
        "BANK_NEO_COMMERCE",
    }
)
_EWALLETS = frozenset({"OVO", "DANA", "GOPAY", "LINKAJA", "SHOPEEPAY"})

# A bank account number: digits only (Indonesian banks use 10 to 16; allow a margin either side).
_BANK_ACCOUNT = re.compile(r"^[0-9]{6,20}$")
# An e-wallet is named by its owner's mobile number, written as a person writes a phone: 0812..., 62812...,
# +62 812-3456-7890 (API.md's addresses hold it as +62812...). Nothing but digits and those separators.
_PHONE_AS_WRITTEN = re.compile(r"^\+?[0-9][0-9 ().-]*$")


@dataclass(frozen=True)
class PayoutChannel:
    code: str  # Xendit's channel code, ID_BCA
    kind: ChannelKind

    def account_number(self, written: str) -> str | None:
        """The account number as Xendit's payout takes it, or None if ``written`` cannot be one for this
        channel: a bank's digits as they are; an e-wallet's mobile number in its national 08... form, which
        Xendit's e-wallet payouts expect (WAL-2)."""
        if self.kind is ChannelKind.BANK:
            return written if _BANK_ACCOUNT.fullmatch(written) else None
        if not _PHONE_AS_WRITTEN.fullmatch(written):
            return None
        try:
            international = normalize_indonesian_phone(written)
        except ValueError:
            return None
        return "0" + international.removeprefix("+62")

    @property
    def account_rule(self) -> str:
        if self.kind is ChannelKind.BANK:
            return "a bank account number: 6 to 20 digits"
        return "the e-wallet's Indonesian mobile number: 0812..., 62812... or +62812..."


def payout_channel(bank_code: str) -> PayoutChannel | None:
    """The payout channel ``bank_code`` names (``BCA``, ``id_bca``...), or None if Xendit has no such one."""
    name = bank_code.strip().upper().removeprefix(COUNTRY_PREFIX)
    if name in _BANKS:
        return PayoutChannel(COUNTRY_PREFIX + name, ChannelKind.BANK)
    if name in _EWALLETS:
        return PayoutChannel(COUNTRY_PREFIX + name, ChannelKind.EWALLET)
    return None


def mask_account_number(account_number: str) -> str:
    """What a response or a log may show of an account number: its last four digits."""
    return "*" * max(len(account_number) - 4, 2) + account_number[-4:]
