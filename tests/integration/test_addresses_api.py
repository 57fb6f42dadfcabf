"""Address routes in-process on moto (ACC-2, SYS-4; issue 9): a user's own addresses only, phones in E.164,
5-digit postal codes, one default per user."""

from __future__ import annotations

import pytest

from patungan.accounts.models import AddressInput
from patungan.composition import address_service
from tests.support.lambdas import call_api, claims, load_event

BUYER = claims("usr_siti", "buyer")
OTHER_BUYER = claims("usr_budi", "buyer")


def new_address(**changes):
    return {**load_event("accounts/create_address.json"), **changes}


def create(who=BUYER, body=None, headers=None):
    return call_api(
        "CreateAddressFunction", "POST", "/v1/addresses", body=body or new_address(), claims=who, headers=headers
    )


def listing(who=BUYER, query=None):
    return call_api("ListAddressesFunction", "GET", "/v1/addresses", claims=who, query=query)


def on_address(function, method, address_id, who, body=None):
    return call_api(
        function,
        method,
        f"/v1/addresses/{address_id}",
        resource="/v1/addresses/{id}",
        path_parameters={"id": address_id},
        body=body,
        claims=who,
    )


def get(address_id, who=BUYER):
    return on_address("GetAddressFunction", "GET", address_id, who)


def patch(address_id, body, who=BUYER):
    return on_address("UpdateAddressFunction", "PATCH", address_id, who, body)


def delete(address_id, who=BUYER):
    return on_address("DeleteAddressFunction", "DELETE", address_id, who)


def defaults(who=BUYER) -> list[str]:
    return [a["id"] for a in listing(who, {"limit": "100"}).body["items"] if a["is_default"]]


def test_a_saved_address_has_an_e164_phone_and_is_the_first_default(aws):
    response = create()

    assert response.status == 201
    address = response.body
    assert address["id"].startswith("adr_")
    assert address["phone"] == "+6281234567890"
    assert address["is_default"] is True
    assert (address["label"], address["postal_code"], address["latitude"]) == ("Rumah", "11530", -6.1934)
    assert get(address["id"]).body == address
    assert listing().body == {"items": [address], "next_cursor": None}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phone", "+1 415 555 0100"),
        ("phone", "0812"),
        ("postal_code", "1153"),
        ("postal_code", "115300"),
        ("postal_code", "11a30"),
    ],
)
def test_a_foreign_phone_or_a_postal_code_not_of_5_digits_is_422_naming_the_field(aws, field, value):
    response = create(body=new_address(**{field: value}))

    assert response.status == 422
    assert response.body["error"]["code"] == "validation_error"
    assert [d["field"] for d in response.body["error"]["details"]] == [f"body.{field}"]
    assert listing().body["items"] == []


def test_a_landline_is_a_valid_recipient_phone(aws):
    assert create(body=new_address(phone="(021) 5356 7890")).body["phone"] == "+622153567890"


def test_another_users_address_is_404_on_get_patch_and_delete(aws):
    mine = create().body

    for response in (get(mine["id"], OTHER_BUYER), patch(mine["id"], {"city": "Bogor"}, OTHER_BUYER)):
        assert response.status == 404
        assert response.body["error"]["code"] == "not_found"
    assert delete(mine["id"], OTHER_BUYER).status == 404
    assert listing(OTHER_BUYER).body["items"] == []
    assert get(mine["id"]).body == mine


def test_addresses_need_a_signed_in_caller(aws):
    for response in (create(who=None), listing(who=None), get("adr_1", who=None)):
        assert response.status == 401


def test_a_new_default_unsets_the_previous_one(aws):
    home = create().body
    office = create(body=new_address(label="Kantor", is_default=True)).body

    assert office["is_default"] is True
    assert get(home["id"]).body["is_default"] is False
    assert defaults() == [office["id"]]

    switched = patch(home["id"], {"is_default": True})
    assert switched.status == 200
    assert switched.body["is_default"] is True
    assert defaults() == [home["id"]]


def test_a_second_address_is_not_the_default_unless_asked(aws):
    home = create().body
    office = create(body=new_address(label="Kantor")).body

    assert office["is_default"] is False
    assert defaults() == [home["id"]]


def test_the_default_cannot_be_unset_only_replaced(aws):
    home = create().body

    response = patch(home["id"], {"is_default": False})

    assert response.status == 422
    assert response.body["error"]["details"][0]["field"] == "is_default"
    assert defaults() == [home["id"]]


def test_patch_changes_the_fields_sent_normalises_the_phone_and_clears_coordinates(aws):
    home = create().body

    response = patch(
        home["id"], {"phone": "62 857 1234 5678", "city": "Jakarta Selatan", "latitude": None, "longitude": None}
    )

    assert response.status == 200
    assert response.body["phone"] == "+6285712345678"
    assert response.body["city"] == "Jakarta Selatan"
    assert (response.body["latitude"], response.body["longitude"]) == (None, None)
    assert response.body["line1"] == home["line1"]
    assert get(home["id"]).body == response.body


@pytest.mark.parametrize("body", [{"recipient_name": None}, {"postal_code": "1234"}, {"phone": "+44 20 7946 0958"}])
def test_patch_refuses_what_a_new_address_would_refuse(aws, body):
    home = create().body

    response = patch(home["id"], body)

    assert response.status == 422
    assert [d["field"] for d in response.body["error"]["details"]] == [f"body.{next(iter(body))}"]
    assert get(home["id"]).body == home


def test_an_address_with_half_a_coordinate_is_refused_as_a_rates_destination_is(aws):
    """ACC-2, review of issue 9: a latitude without its longitude locates nothing (the rates route refuses it):
    a saved address cannot be left with one, neither when saved nor by a patch that sends or clears only one."""
    half = new_address()
    del half["longitude"]

    created = create(body=half)

    assert created.status == 422, created.body
    assert "latitude and longitude" in created.body["error"]["details"][0]["message"]
    home = create().body
    for body in ({"latitude": None}, {"longitude": 106.8}, {"latitude": -6.2, "longitude": None}):
        response = patch(home["id"], body)
        assert response.status == 422, (body, response.body)
        assert "latitude and longitude" in response.body["error"]["details"][0]["message"]
    assert get(home["id"]).body == home
    moved = patch(home["id"], {"latitude": -6.2, "longitude": 106.8})
    assert (moved.status, moved.body["latitude"], moved.body["longitude"]) == (200, -6.2, 106.8)


def test_deleting_the_default_makes_the_newest_remaining_address_the_default(aws):
    home = create().body
    office = create(body=new_address(label="Kantor")).body
    parents = create(body=new_address(label="Rumah orang tua")).body

    response = delete(home["id"])

    assert response.status == 204
    assert get(home["id"]).status == 404
    assert defaults() == [parents["id"]]
    assert delete(office["id"]).status == 204
    assert defaults() == [parents["id"]]
    assert delete(parents["id"]).status == 204
    assert listing().body["items"] == []
    again = create().body
    assert again["is_default"] is True


def test_deleting_twice_is_404(aws):
    home = create().body

    assert delete(home["id"]).status == 204
    assert delete(home["id"]).status == 404


def test_the_address_limit_is_409_and_deleting_one_makes_room(aws, monkeypatch):
    from patungan.accounts import service

    monkeypatch.setattr(service, "MAX_ADDRESSES_PER_USER", 3)
    first, *_ = [create().body for _ in range(3)]

    refused = create()
    assert refused.status == 409
    assert refused.body["error"]["code"] == "address_limit_reached"
    assert len(listing().body["items"]) == 3
    assert delete(first["id"]).status == 204
    assert create().status == 201


def test_the_same_idempotency_key_saves_one_address(aws):
    headers = {"Idempotency-Key": "address-1"}

    first = create(headers=headers)
    again = create(headers=headers)

    assert first.status == again.status == 201
    assert again.body == first.body
    assert len(listing().body["items"]) == 1


def test_addresses_are_listed_in_pages(aws):
    made = [create(body=new_address(label=f"Alamat {n}")).body["id"] for n in range(3)]

    first = listing(query={"limit": "2"}).body
    second = listing(query={"limit": "2", "cursor": first["next_cursor"]}).body

    assert [a["id"] for a in first["items"] + second["items"]] == made
    assert second["next_cursor"] is None


def test_coordinates_are_kept_to_about_a_centimetre_even_below_what_dynamodb_stores(aws):
    """Issue 9, found by the fuzzer: a subnormal latitude (-2.2e-313) was a 500 (DynamoDB stores no number
    below 1e-130)."""
    response = create(body=new_address(latitude=-2.2250738585e-313, longitude=106.769812345678))

    assert response.status == 201
    assert (response.body["latitude"], response.body["longitude"]) == (0.0, 106.7698123)
    assert get(response.body["id"]).body == response.body


def test_a_retry_whose_first_attempt_saved_the_address_gets_that_address_not_a_second_one(aws):
    """SYS-4, crash then retry: the first attempt committed, then died before its answer and its idempotency
    record were kept; the retry with the same Idempotency-Key answers the address it saved."""
    saved = address_service().add("usr_siti", AddressInput(**new_address()), "home-1")

    retried = create(headers={"Idempotency-Key": "home-1"})

    assert retried.status == 201
    assert retried.body == saved.model_dump()
    assert [a["id"] for a in listing().body["items"]] == [saved.id]
    assert create(headers={"Idempotency-Key": "k" * 2000}).status == 201


def test_a_cursor_from_another_users_list_reads_nothing_of_theirs(aws):
    for n in range(2):
        create(body=new_address(label=f"Alamat {n}"))
    theirs = listing(query={"limit": "1"}).body["next_cursor"]

    response = listing(OTHER_BUYER, query={"limit": "1", "cursor": theirs})

    assert response.status == 400
    assert response.body["error"]["code"] == "invalid_cursor"


def test_a_retry_of_the_address_that_reached_the_limit_gets_that_address_not_a_409(aws, monkeypatch):
    """ACC-2, SYS-4 (review of issue 9): the address that filled the book was saved, then its answer was lost;
    the retry with its Idempotency-Key met the full book first and answered 409 address_limit_reached, so the
    client believed it was not saved. The retry answers the address it saved; a new one is still refused."""
    from patungan.accounts import service

    monkeypatch.setattr(service, "MAX_ADDRESSES_PER_USER", 2)
    create()
    saved = address_service().add("usr_siti", AddressInput(**new_address()), "office-1")

    retried = create(headers={"Idempotency-Key": "office-1"})

    assert (retried.status, retried.body) == (201, saved.model_dump())
    assert create(headers={"Idempotency-Key": "office-2"}).body["error"]["code"] == "address_limit_reached"
    assert len(listing().body["items"]) == 2
