"""The request edge's own rules (SYS-3): JSON nesting depth, text without control characters, bounds that DynamoDB
and the Xendit SDK's floats hold exactly."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ValidationError

from patungan.core.errors import BadRequest
from patungan.core.http import MAX_JSON_DEPTH, parse_json_body
from patungan.core.inputs import MAX_AMOUNT, MAX_QUANTITY, multi_line, single_line


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_json_nested_to_the_limit_parses():
    assert parse_json_body(nested(MAX_JSON_DEPTH)) == json.loads(nested(MAX_JSON_DEPTH))


def test_json_nested_one_deeper_is_refused_before_parsing():
    with pytest.raises(BadRequest) as refused:
        parse_json_body(nested(MAX_JSON_DEPTH + 1))

    assert refused.value.code == "invalid_body"


@pytest.mark.parametrize(
    "text", ['"' + "[" * 100 + '"', '"\\"' + "{" * 100 + '"', '{"a": "]]]]", "b": ' + nested(30) + "}"]
)
def test_brackets_inside_strings_do_not_count(text):
    assert parse_json_body(text) is not None


class Named(BaseModel):
    name: single_line(20)
    description: multi_line(100) = ""


@pytest.mark.parametrize("name", ["a\x00b", "a\tb", "a\nb", "a\x7fb", "a\x85b", "\x1b[31mred"])
def test_a_name_with_a_control_character_is_refused(name):
    with pytest.raises(ValidationError):
        Named(name=name)


def test_a_description_keeps_its_line_breaks_but_no_other_control_character():
    assert Named(name="n", description="line one\r\n\tline two").description == "line one\r\n\tline two"
    with pytest.raises(ValidationError):
        Named(name="n", description="bell\x07")


def test_bounds_are_exact_in_dynamodb_and_as_the_xendit_sdks_float():
    assert float(MAX_AMOUNT) == MAX_AMOUNT < 2**53
    assert len(str(MAX_AMOUNT * MAX_QUANTITY)) <= 38


def test_an_unterminated_string_of_escaped_quotes_is_read_once():
    """Each escaped quote once started a fresh scan to the end: 400 000 of them took about twenty minutes."""
    with pytest.raises(json.JSONDecodeError):
        parse_json_body('"' + '\\"' * 400_000 + "[" * 40)
