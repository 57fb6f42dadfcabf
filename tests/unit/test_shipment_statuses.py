"""Courier statuses only move forward (LOG-2; the session's rank): a late or repeated webhook never takes a parcel
back, nothing leaves a terminal status, and the courier gives a parcel up only before pickup."""

import pytest

from patungan.fulfilment.models import COURIER_STATUS_RANK, TERMINAL_STATUSES, is_forward

FORWARD = [
    ("booking", "confirmed"),
    ("confirmed", "picked"),
    ("picking_up", "picked"),
    ("picked", "dropping_off"),
    ("dropping_off", "on_hold"),
    ("on_hold", "dropping_off"),
    ("dropping_off", "delivered"),
    ("picked", "return_in_transit"),
    ("return_in_transit", "returned"),
    ("allocated", "cancelled"),
    ("booking", "courier_not_found"),
    ("picking_up", "rejected"),
]
BACKWARD_OR_STUCK = [
    ("picked", "confirmed"),
    ("delivered", "picked"),
    ("delivered", "returned"),
    ("returned", "delivered"),
    ("cancelled", "confirmed"),
    ("picked", "picked"),
    ("picked", "cancelled"),
    ("dropping_off", "rejected"),
    ("return_in_transit", "dropping_off"),
    ("return_in_transit", "delivered"),  # CHK-9: no COD collection for a parcel on its way back
    ("confirmed", "teleported"),
]


@pytest.mark.parametrize(("old", "new"), FORWARD)
def test_a_later_status_moves_the_shipment_on(old, new):
    assert is_forward(old, new)


@pytest.mark.parametrize(("old", "new"), BACKWARD_OR_STUCK)
def test_an_earlier_repeated_unknown_or_too_late_status_is_ignored(old, new):
    assert not is_forward(old, new)


def test_nothing_moves_out_of_a_terminal_status():
    assert not any(is_forward(old, new) for old in TERMINAL_STATUSES for new in COURIER_STATUS_RANK)
