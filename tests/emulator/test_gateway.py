"""The HTTP side: API routes as API Gateway REST proxy events with Cognito-like claims, Function URLs,
local sign-in, and the error shape of the gateway's own answers."""

from __future__ import annotations

import base64

import requests

from emulator.apigateway import binary_media_types
from emulator.template import Template


def token(stack, sub: str, groups: list[str], **extra: str) -> str:
    response = requests.post(f"{stack.url}/_local/token", json={"sub": sub, "groups": groups, **extra}, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["token"]


def echoed_event(response: requests.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()["event"]


def test_an_authorized_route_gets_a_proxy_event_with_the_callers_claims(stack):
    bearer = token(stack, "admin-1", ["admin", "buyer"], factory_id="fac_1")

    response = requests.post(
        f"{stack.url}/things/sepatu?size=42&size=44&color=red",
        json={"quantity": 2},
        headers={"Authorization": f"Bearer {bearer}", "X-Correlation-Id": "corr-1"},
        timeout=5,
    )

    event = echoed_event(response)
    assert response.headers["x-correlation-id"] == "corr-1"
    assert event["resource"] == "/things/{name}"
    assert event["path"] == "/things/sepatu"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"name": "sepatu"}
    assert event["queryStringParameters"] == {"size": "44", "color": "red"}
    assert event["multiValueQueryStringParameters"] == {"size": ["42", "44"], "color": ["red"]}
    assert event["headers"]["X-Correlation-Id"] == "corr-1"
    assert event["body"] == '{"quantity": 2}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert (context["resourcePath"], context["httpMethod"], context["stage"]) == ("/things/{name}", "POST", "local")
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    claims = context["authorizer"]["claims"]
    assert claims["sub"] == "admin-1"
    assert claims["cognito:groups"] == "admin,buyer"
    assert claims["custom:factory_id"] == "fac_1"


def test_a_literal_path_wins_over_a_path_parameter(stack):
    bearer = token(stack, "buyer-1", ["buyer"])

    response = requests.post(f"{stack.url}/things/special", headers={"Authorization": f"Bearer {bearer}"}, timeout=5)

    assert echoed_event(response)["resource"] == "/things/special"


def test_a_public_route_gets_no_claims_even_with_a_token(stack):
    bearer = token(stack, "buyer-1", ["buyer"])

    event = echoed_event(requests.get(f"{stack.url}/public", headers={"Authorization": f"Bearer {bearer}"}, timeout=5))

    assert "authorizer" not in event["requestContext"]
    assert event["queryStringParameters"] is None


def test_a_missing_or_forged_token_is_401_in_the_error_shape(stack):
    forged = token(stack, "buyer-1", ["buyer"])[:-2] + "xx"

    for headers in ({}, {"Authorization": f"Bearer {forged}"}, {"Authorization": "Bearer nonsense"}):
        response = requests.post(f"{stack.url}/things/x", headers=headers, timeout=5)

        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.json()["error"]["details"] == []
        assert response.headers["x-correlation-id"]


def test_unknown_paths_are_404_and_wrong_methods_405_in_the_error_shape(stack):
    missing = requests.get(f"{stack.url}/nothing/here", timeout=5)
    wrong_method = requests.delete(f"{stack.url}/public", timeout=5)

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert missing.headers["x-correlation-id"] and wrong_method.headers["x-correlation-id"]


def test_a_preflight_gets_the_templates_cors_headers(stack):
    response = requests.options(f"{stack.url}/things/x", timeout=5)

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "GET,POST,OPTIONS"


def test_the_token_endpoint_validates_its_input(stack):
    cases = [
        ({"groups": ["buyer"]}, "sub"),
        ({"sub": "u-1", "groups": ["buyer", "wizard"]}, "groups.1"),
        ({"sub": "u-1", "groups": "buyer"}, "groups"),
        ({"sub": "u-1", "nickname": "x"}, "nickname"),
        ({"sub": "buyer 1", "groups": ["buyer"]}, "sub"),  # no user id has a space (a wallet is named by it)
    ]
    for body, field in cases:
        response = requests.post(f"{stack.url}/_local/token", json=body, timeout=5)

        assert response.status_code == 422, body
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert field in [detail["field"] for detail in error["details"]]


def test_a_function_url_gets_a_payload_2_event_and_answers_with_its_response(stack):
    response = requests.post(
        f"{stack.url}/_url/WebhookFunction/callbacks/invoice?x=1&x=2",
        data=b'{"id": "inv-1"}',
        headers={"X-Callback-Token": "secret", "Content-Type": "application/json"},
        timeout=5,
    )

    assert response.status_code == 202
    assert response.headers["x-echo"] == "yes"
    event = response.json()
    assert event["version"] == "2.0"
    assert event["rawPath"] == "/callbacks/invoice"
    assert event["rawQueryString"] == "x=1&x=2"
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["headers"]["x-callback-token"] == "secret"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["body"] == '{"id": "inv-1"}'


def test_a_function_url_answers_at_its_root_with_and_without_the_slash(stack):
    for url in (f"{stack.url}/_url/WebhookFunction/", f"{stack.url}/_url/WebhookFunction"):
        response = requests.post(url, json={"event": "invoice.paid"}, timeout=5, allow_redirects=False)

        assert response.status_code == 202, url
        assert response.json()["rawPath"] == "/"


def test_a_function_url_result_without_status_code_is_a_200_json_body(stack):
    response = requests.post(f"{stack.url}/_url/WebhookFunction/plain", data="hello", timeout=5)

    assert response.status_code == 200
    assert response.json() == {"received": "hello"}


def test_only_functions_with_a_function_url_have_one(stack):
    response = requests.post(f"{stack.url}/_url/EchoFunction/", timeout=5)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_local_xendit_answers_carry_a_correlation_id_too(stack):
    """API.md: every response has x-correlation-id. The mounted local Xendit's answers had none (review, issue 6);
    its error bodies stay in Xendit's own shape, which the Xendit SDK reads."""
    sent = requests.get(f"{stack.url}/_xendit/invoices/nope", headers={"X-Correlation-Id": "corr-x"}, timeout=5)
    fresh = requests.post(f"{stack.url}/_xendit/simulate/invoices/nope/pay", timeout=5)

    assert sent.status_code == fresh.status_code == 404
    assert sent.headers["x-correlation-id"] == "corr-x"
    assert fresh.headers["x-correlation-id"]
    assert fresh.json()["error_code"] == "INVOICE_NOT_FOUND_ERROR"


def test_a_binary_response_arrives_as_its_exact_bytes_when_the_client_accepts_its_type(stack):
    """LOG-3: a label PDF served with binary_response reaches the client as the PDF's bytes (API Gateway decodes
    the function's base64 body for the template's BinaryMediaTypes), with its type and file name."""
    expected = b"%PDF-1.4\n" + bytes(range(256))

    response = requests.get(f"{stack.url}/files/label-1", headers={"Accept": "application/pdf"}, timeout=5)

    assert response.status_code == 200
    assert response.content == expected
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == 'inline; filename="label-1.pdf"'
    assert response.headers["x-correlation-id"]


def test_a_binary_response_stays_base64_text_when_the_client_accepts_anything_first(stack):
    """As in AWS: API Gateway decides by the request's first Accept type, so curl's default ``*/*`` gets the
    base64 text; this is why clients ask for a label with ``Accept: application/pdf``."""
    expected = b"%PDF-1.4\n" + bytes(range(256))

    response = requests.get(f"{stack.url}/files/label-1", headers={"Accept": "*/*, application/pdf"}, timeout=5)

    assert response.status_code == 200
    assert base64.b64decode(response.content) == expected


def test_the_api_serves_label_pdfs_as_binary():
    """LOG-3: without application/pdf among the API's BinaryMediaTypes, AWS would send a label as base64 text."""
    assert "application/pdf" in binary_media_types(Template.load())
