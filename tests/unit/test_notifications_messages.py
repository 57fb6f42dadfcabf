"""What notifications say (NOT-1): rupiah and deadlines for people, and the text variants of each event."""

from __future__ import annotations

from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patungan.notifications.messages import (
    OrderCancelled,
    OrderCreated,
    OrderRefunded,
    OrderShipped,
    PaymentExpired,
    PaymentRefunded,
    RefundRequested,
    format_deadline,
    format_rupiah,
)
from patungan.notifications.service import notification_id_for
from patungan.payments.models import RefundReason


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (0, "Rp0"),
        (999, "Rp999"),
        (1000, "Rp1.000"),
        (150000, "Rp150.000"),
        (1234567, "Rp1.234.567"),
        (-5000, "-Rp5.000"),
    ],
)
def test_rupiah_use_a_dot_between_thousands_and_no_decimals(amount, text):
    assert format_rupiah(amount) == text


@given(st.integers(min_value=0, max_value=10**15))
def test_rupiah_text_reads_back_as_the_same_amount(amount):
    assert int(format_rupiah(amount).removeprefix("Rp").replace(".", "")) == amount


def test_deadlines_are_shown_in_jakarta_time():
    assert format_deadline("2026-11-21T20:30:00Z") == "22 Nov 2026, 03:30 WIB"


def refund_requested(reason: str) -> RefundRequested:
    return RefundRequested(user_id="u", payment_id="pay_1", refund_id="rfd_1", amount=75000, reason=reason)


def test_each_refund_reason_says_why_and_how_much():
    messages = {
        reason: refund_requested(reason).message()
        for reason in ("session_failed", "session_cancelled", "left", "late_payment", "duplicate_charge")
    }

    assert len({m.title for m in messages.values()}) == 5
    assert all(m.body.endswith("Your refund of Rp75.000 is on its way.") for m in messages.values())
    assert "cancelled" in messages["session_cancelled"].body
    assert "minimum order" in messages["session_failed"].body


def test_a_retail_refund_reads_as_a_checkout_not_a_group_buy():
    """Issue 10: a cancelled order's refund, and a checkout paid after its window, are not group-buy news (the
    refund_requested event of a cancel used to fail this model: its reason was unknown)."""
    cancelled = refund_requested("order_cancelled").message()
    late = refund_requested("late_payment").message()

    assert cancelled.title == "Order cancelled"
    assert "group buy" not in late.body and "payment window" in late.body
    late_join = RefundRequested(
        user_id="u", payment_id="p", refund_id="r", amount=1, reason="late_payment", session_id="ses_1"
    ).message()
    assert "group buy" in late_join.body


@pytest.mark.parametrize("reason", get_args(RefundReason))
def test_every_reason_a_refund_can_have_becomes_a_notification(reason):
    """NOT-1: a refund_requested event whose reason the notification did not know failed validation, so its
    message was retried and dead-lettered and the buyer never heard (a returned parcel's ``parcel_returned``,
    a rolled-back join's ``rolled_back``)."""
    message = refund_requested(reason).message()

    assert message.title and message.body.endswith("Your refund of Rp75.000 is on its way.")


def test_an_unknown_refund_reason_is_refused():
    with pytest.raises(ValueError, match="reason"):
        refund_requested("changed_my_mind")


def test_a_refund_says_where_the_money_went():
    xendit = PaymentRefunded(user_id="u", payment_id="p", refund_id="r", amount=5000, destination="xendit")

    assert xendit.message().body == "Your refund of Rp5.000 was sent to your original payment method."


def test_a_shipped_order_names_its_courier_and_waybill():
    """NOT-1, LOG-2: the buyer can look the parcel up at the courier from the notification alone."""
    shipped = OrderShipped(user_id="u", order_id="ord_1", total=1, courier="jne", waybill_id="WAYBILL000001")

    assert "(JNE, waybill WAYBILL000001)" in shipped.message().body


def test_only_a_returned_cash_on_delivery_parcel_makes_a_cancel_news():
    """NOT-1: the buyer's own cancel and a paid order's refund already speak; a COD parcel that came back does not."""
    assert OrderCancelled(user_id="u", order_id="ord_1", total=1).message() is None
    returned = OrderCancelled(user_id="u", order_id="ord_1", total=1, reason="parcel_returned").message()
    assert returned is not None and returned.title == "Parcel returned"


def test_a_refund_to_the_wallet_at_once_is_told_by_the_order_and_one_through_the_channel_is_not():
    """NOT-1: a wallet refund has no payment refund events to speak for it; a channel refund has its own."""
    data = {"user_id": "u", "order_id": "ord_1", "total": 75000}

    assert OrderRefunded(**data).message() is None
    cancelled = OrderRefunded(**data, reason="order_cancelled", refunded_to="wallet").message()
    returned = OrderRefunded(**data, reason="parcel_returned", refunded_to="wallet").message()
    assert cancelled is not None and cancelled.title == "Refund completed"
    assert returned is not None and returned.title == "Parcel returned"
    assert returned.body.endswith("Rp75.000 is back in your Patungan wallet.")


def test_an_order_outside_a_group_buy_is_simply_placed():
    message = OrderCreated(user_id="u", order_id="ord_1", total=99000).message()

    assert (message.title, message.body) == ("Order placed", "Your order of Rp99.000 was created.")


def test_no_wallet_credit_is_mentioned_without_a_tier_refund():
    message = OrderCreated(user_id="u", order_id="ord_1", session_id="gbs_1", total=99000, tier_refund_amount=0)

    assert message.message().body == "Your group buy succeeded and your order of Rp99.000 was created."


def test_an_expired_payment_outside_a_group_buy_does_not_mention_one():
    message = PaymentExpired(user_id="u", payment_id="pay_1", amount=10000).message()

    assert "group buy" not in message.body


def test_notification_data_keeps_the_event_details_but_not_the_recipient():
    order = OrderCreated(user_id="u", is_platform=False, order_id="ord_1", total=99000)

    assert order.details() == {"order_id": "ord_1", "total": 99000, "currency": "IDR"}


def test_a_notification_id_is_derived_from_its_event_id():
    assert notification_id_for("evt_01jd0000000000000000000001") == "ntf_01jd0000000000000000000001"
    assert notification_id_for("evt_a") == notification_id_for("evt_a") != notification_id_for("evt_b")
