"""Files over the API (LOG-3): ``binary_response`` hands API Gateway the bytes base64-encoded with
``isBase64Encoded`` (what BinaryMediaTypes needs to send them as bytes), shown inline under a safe file name, and
``documented_file`` describes such a route in the OpenAPI document."""

from __future__ import annotations

import base64
import json

from patungan.core.http import binary_response, create_api, documented_file
from tests.support.lambdas import FakeLambdaContext, api_event

PDF = b"%PDF-1.4\n" + bytes(range(256))

app = create_api()


@app.get("/v1/files/<id>", responses=documented_file("application/pdf", "The file"))
def download(id: str):
    return binary_response(PDF, "application/pdf", f"label {id}.pdf")


def fetch(file_id: str) -> dict:
    event = api_event("GET", f"/v1/files/{file_id}", resource="/v1/files/{id}", path_parameters={"id": file_id})
    return app.resolve(event, FakeLambdaContext())


def test_a_file_goes_to_api_gateway_base64_encoded_as_its_exact_bytes():
    response = fetch("shp_1")

    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is True
    assert base64.b64decode(response["body"]) == PDF
    headers = {name: values[-1] for name, values in response["multiValueHeaders"].items()}
    assert headers["Content-Type"] == "application/pdf"
    assert headers["Content-Disposition"] == 'inline; filename="label_shp_1.pdf"'


def test_a_file_name_cannot_break_out_of_its_header():
    response = binary_response(PDF, "application/pdf", 'x";\r\nSet-Cookie: a=b.pdf')

    assert response.headers["Content-Disposition"] == 'inline; filename="x____Set-Cookie__a_b.pdf"'


def test_the_openapi_document_says_the_route_answers_a_binary_pdf():
    responses = json.loads(app.get_openapi_json_schema())["paths"]["/v1/files/{id}"]["get"]["responses"]

    assert responses["200"]["content"] == {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}
