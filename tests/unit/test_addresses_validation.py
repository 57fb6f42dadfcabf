"""Phone numbers and postal codes as addresses take them (ACC-2; issue 9), property-based: every written
form of a valid Indonesian mobile number normalises to the one E.164 number; nothing foreign is accepted;
a postal code is exactly five ASCII digits."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from patungan.accounts.models import AddressInput, AddressUpdate
from patungan.core.phone import normalize_indonesian_phone

# Mobile prefixes of Telkomsel, Indosat, XL, Axis, Tri and Smartfren, without the trunk 0.
MOBILE_PREFIXES = [
    "811", "812", "813", "821", "822", "823", "851", "852", "853",
    "814", "815", "816", "855", "856", "857", "858",
    "817", "818", "819", "859", "877", "878",
    "831", "832", "833", "838",
    "895", "896", "897", "898", "899",
    "881", "882", "883", "884", "885", "886", "887", "888", "889",
]  # fmt: skip
# How people write the country part: the trunk 0, the country code with or without its plus, bracketed.
COUNTRY_PARTS = ["0", "62", "+62", "+62 ", "+62-", "(+62) ", "(+62)", "62 ", "+ 62 "]
SEPARATORS = ["", " ", "-", ".", "  "]
OTHER_COUNTRY_CODES = sorted(code for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE if code != 62)

national_mobiles = st.builds(
    lambda prefix, subscriber: prefix + subscriber,
    st.sampled_from(MOBILE_PREFIXES),
    st.text(alphabet="0123456789", min_size=6, max_size=9),
)


@st.composite
def written_forms(draw, national: str) -> str:
    """``national`` as someone might type it: a country part, digit groups split anywhere, any separator,
    blanks around."""
    cuts = sorted(draw(st.sets(st.integers(1, len(national) - 1), max_size=4)))
    groups = [national[start:end] for start, end in zip([0, *cuts], [*cuts, len(national)], strict=True)]
    separator = draw(st.sampled_from(SEPARATORS))
    padding = draw(st.sampled_from(["", " ", "\t"]))
    return padding + draw(st.sampled_from(COUNTRY_PARTS)) + separator.join(groups) + padding


@given(st.data(), national_mobiles)
def test_every_written_form_of_an_indonesian_mobile_normalises_to_one_e164_number(data, national):
    first = data.draw(written_forms(national))
    second = data.draw(written_forms(national))

    assert normalize_indonesian_phone(first) == normalize_indonesian_phone(second) == f"+62{national}"


@given(national_mobiles)
def test_a_normalised_number_normalises_to_itself(national):
    e164 = normalize_indonesian_phone(f"0{national}")

    assert normalize_indonesian_phone(e164) == e164
    assert normalize_indonesian_phone(e164, mobile_only=False) == e164


@given(st.sampled_from(OTHER_COUNTRY_CODES), st.text(alphabet="0123456789", min_size=4, max_size=13))
def test_a_number_of_another_country_is_refused(country_code, digits):
    with pytest.raises(ValueError):
        normalize_indonesian_phone(f"+{country_code}{digits}", mobile_only=False)


@given(st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS - {"ID"})))
def test_a_real_mobile_number_of_another_country_is_refused_in_any_format(region):
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return
    for style in (phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL):
        with pytest.raises(ValueError):
            normalize_indonesian_phone(phonenumbers.format_number(example, style), mobile_only=False)


@given(st.text(max_size=60))
def test_whatever_is_typed_the_answer_is_a_valid_indonesian_number_or_a_refusal(raw):
    try:
        e164 = normalize_indonesian_phone(raw, mobile_only=False)
    except ValueError:
        return
    number = phonenumbers.parse(e164)
    assert e164.startswith("+62")
    assert phonenumbers.is_valid_number(number)
    assert phonenumbers.region_code_for_number(number) == "ID"


@pytest.mark.parametrize("landline", ["(021) 5356 7890", "+62 22 4201234", "0274-512345"])
def test_a_landline_is_refused_where_a_mobile_is_needed_and_kept_for_an_address(landline):
    with pytest.raises(ValueError):
        normalize_indonesian_phone(landline)
    assert normalize_indonesian_phone(landline, mobile_only=False).startswith("+62")


ADDRESS = {
    "recipient_name": "Siti Rahmawati",
    "phone": "0812-3456-7890",
    "line1": "Jl. Kebon Jeruk Raya No. 27",
    "city": "Jakarta Barat",
    "province": "DKI Jakarta",
    "postal_code": "11530",
}


@given(st.text(alphabet="0123456789", min_size=5, max_size=5))
def test_any_five_ascii_digits_are_a_postal_code(code):
    assert AddressInput.model_validate({**ADDRESS, "postal_code": code}).postal_code == code


@given(
    st.text(max_size=12).filter(lambda text: not (len(text) == 5 and all(c in "0123456789" for c in text)))
    | st.text(alphabet=st.characters(categories=["Nd"]), min_size=5, max_size=5).filter(lambda text: not text.isascii())
)
def test_anything_but_five_ascii_digits_is_refused_naming_the_postal_code(code):
    for model, body in ((AddressInput, {**ADDRESS, "postal_code": code}), (AddressUpdate, {"postal_code": code})):
        with pytest.raises(ValidationError) as refused:
            model.model_validate(body)
        assert [error["loc"] for error in refused.value.errors()] == [("postal_code",)]


def test_an_address_phone_is_stored_in_e164_and_a_foreign_one_is_refused_naming_the_phone():
    assert AddressInput.model_validate(ADDRESS).phone == "+6281234567890"
    with pytest.raises(ValidationError) as refused:
        AddressInput.model_validate({**ADDRESS, "phone": "+60 12-345 6789"})
    assert [error["loc"] for error in refused.value.errors()] == [("phone",)]
