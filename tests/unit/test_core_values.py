"""Phone normalisation (ACC-2), the slug generator (CAT-1), claims → principal (ACC-1), cursors."""

import pytest

from patungan.core.auth import Role, principal_from_claims
from patungan.core.errors import BadRequest, Forbidden
from patungan.core.pagination import decode_cursor, encode_cursor
from patungan.core.phone import normalize_indonesian_phone
from patungan.core.text import slugify


@pytest.mark.parametrize("raw", ["0812-3456-7890", "6281234567890", "+62 812 3456 7890", "+62-812-3456-7890"])
def test_indonesian_numbers_normalise_to_e164(raw):
    assert normalize_indonesian_phone(raw) == "+6281234567890"


@pytest.mark.parametrize("raw", ["12345", "+1 415 555 0100", "0212345678", "08123"])
def test_other_numbers_are_refused(raw):
    with pytest.raises(ValueError):
        normalize_indonesian_phone(raw)


@pytest.mark.parametrize(
    ("text", "slug"),
    [("Sepatu Kanvas", "sepatu-kanvas"), ("  Kopi  Gayo — 250g! ", "kopi-gayo-250g"), ("Crème brûlée", "creme-brulee")],
)
def test_slugify(text, slug):
    assert slugify(text) == slug


@pytest.mark.parametrize("groups", ["admin,factory", "[admin factory]", ["admin", "factory"], "admin factory"])
def test_groups_claim_in_every_shape_api_gateway_sends(groups):
    principal = principal_from_claims({"sub": "u1", "cognito:groups": groups, "custom:factory_id": "fac_1"})

    assert principal.roles == {Role.ADMIN, Role.FACTORY}
    assert principal.is_factory_staff_of("fac_1")
    assert not principal.is_factory_staff_of("fac_2")


def test_unknown_groups_grant_nothing():
    principal = principal_from_claims({"sub": "u1", "cognito:groups": "superuser"})

    assert principal.roles == frozenset()
    with pytest.raises(Forbidden):
        principal.require(Role.ADMIN)


def test_no_sub_is_no_principal():
    assert principal_from_claims({"cognito:groups": "admin"}) is None


def test_cursor_round_trip_and_garbage():
    key = {"pk": "PRODUCT#1", "sk": "META"}

    assert decode_cursor(encode_cursor(key)) == key
    assert encode_cursor(None) is None
    with pytest.raises(BadRequest):
        decode_cursor("%%%")
