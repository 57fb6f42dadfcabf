"""Where a withdrawal may go (WAL-2): Xendit's Indonesian payout channels, the account numbers each takes,
and the only form in which an account number is ever shown."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from patungan.wallet.channels import ChannelKind, mask_account_number, payout_channel
from patungan.wallet.models import Withdrawal, WithdrawalInput


@pytest.mark.parametrize(
    ("sent", "code", "kind"),
    [
        ("BCA", "ID_BCA", ChannelKind.BANK),
        ("id_bca", "ID_BCA", ChannelKind.BANK),
        (" Mandiri ", "ID_MANDIRI", ChannelKind.BANK),
        ("ID_OVO", "ID_OVO", ChannelKind.EWALLET),
        ("gopay", "ID_GOPAY", ChannelKind.EWALLET),
    ],
)
def test_a_bank_code_names_a_xendit_channel_with_or_without_the_country(sent, code, kind):
    assert payout_channel(sent) == payout_channel(code)
    assert (payout_channel(sent).code, payout_channel(sent).kind) == (code, kind)


@pytest.mark.parametrize("sent", ["", "ID_", "PH_BCA", "BCAX", "ID_ID_BCA", "VISA"])
def test_anything_else_is_no_channel(sent):
    assert payout_channel(sent) is None


def test_an_e_wallet_takes_a_mobile_number_and_a_bank_an_account_number():
    ovo, bca = payout_channel("OVO"), payout_channel("BCA")

    for written in ("081234567890", "6281234567890", "+6281234567890", "+62 812-3456-7890", "0812 3456 7890"):
        assert ovo.account_number(written) == "081234567890", written  # the form Xendit's e-wallet payouts take
    for not_a_mobile in (
        "1234567890",
        "08123",
        "+6581234567",
        "08123abc4567890",
        "\uff10\uff18\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19\uff10",
    ):
        assert ovo.account_number(not_a_mobile) is None, not_a_mobile
    assert bca.account_number("1234567890") == "1234567890" and bca.account_number("131313") == "131313"
    for not_an_account in ("12345", "1234 5678", "١٢٣٤٥٦٧"):
        assert bca.account_number(not_an_account) is None, not_an_account


def test_an_account_number_is_shown_by_its_last_four_digits_only():
    assert mask_account_number("1234567890") == "******7890"
    assert mask_account_number("131313") == "**1313"


def test_neither_the_request_nor_the_stored_withdrawal_prints_the_account_number():
    request = WithdrawalInput(amount=10_000, bank_code="bca", account_number="1234567890", account_name="Budi")
    stored = Withdrawal(
        id="wdr_1",
        user_id="usr_1",
        amount=10_000,
        fee=0,
        net_amount=10_000,
        currency="IDR",
        status="requested",
        bank_code="BCA",
        channel_code="ID_BCA",
        account_name="Budi",
        account_number="1234567890",
        created_at="2026-11-30T00:00:00Z",
        updated_at="2026-11-30T00:00:00Z",
    )

    assert request.bank_code == "BCA"
    for shown in (repr(request), str(request), repr(stored), stored.view().model_dump_json(), str(stored.summary())):
        assert "1234567890" not in shown
    with pytest.raises(ValidationError, match="bank_code"):
        WithdrawalInput(amount=10_000, bank_code="XYZ", account_number="1234567890", account_name="Budi")
