"""The local stack's log reads as plain lines (issue 6, "what a newcomer tripped over": werkzeug access lines
with colour codes and raw metric blobs): functions' Powertools JSON lines as ``time level service message
key=value``, EMF metric blobs as one ``METRIC`` line, one line per HTTP request."""

from __future__ import annotations

import io
import json
import logging
import re
import threading

from werkzeug.test import Client
from werkzeug.wrappers import Response

from emulator.logs import REQUEST_LOGGER, ReadableOutput, access_log, render

TIME = r"\d\d:\d\d:\d\d\.\d{3}"
EMF_BLOB = {
    "_aws": {
        "Timestamp": 1796001988013,
        "CloudWatchMetrics": [
            {
                "Namespace": "Patungan",
                "Dimensions": [["service"]],
                "Metrics": [{"Name": "SessionJoins", "Unit": "Count"}, {"Name": "JoinLatency", "Unit": "Milliseconds"}],
            }
        ],
    },
    "service": "groupbuy",
    "SessionJoins": [1.0],
    "JoinLatency": [12.5, 3.0],
}
POWERTOOLS_LINE = {
    "level": "INFO",
    "location": "settle_page:88",
    "message": "settled page 2 of 3",
    "timestamp": "2026-11-30 01:26:28,013+0000",
    "service": "groupbuy",
    "cold_start": False,
    "function_name": "SettleSessionPageFunction",
    "function_request_id": "5f1c",
    "correlation_id": "c-1",
    "session_id": "ses_1",
    "note": "two words",
}


def test_a_metric_blob_becomes_one_metric_line():
    line = render(json.dumps(EMF_BLOB))

    assert re.fullmatch(rf"{TIME} METRIC groupbuy SessionJoins=1 JoinLatency=12.5,3", line)


def test_a_powertools_log_line_becomes_time_level_service_message_and_its_own_keys():
    line = render(json.dumps(POWERTOOLS_LINE))

    assert re.fullmatch(
        rf'{TIME} INFO  groupbuy settled page 2 of 3 correlation_id=c-1 session_id=ses_1 note="two words"', line
    )


def test_an_exception_is_printed_under_its_log_line():
    record = {**POWERTOOLS_LINE, "level": "ERROR", "exception": "Traceback (most recent call last):\nValueError: x"}

    first, *trace = render(json.dumps(record)).splitlines()

    assert first.split(" ")[1:4] == ["ERROR", "groupbuy", "settled"]
    assert trace == ["    Traceback (most recent call last):", "    ValueError: x"]


def test_other_lines_pass_as_they_are():
    for line in ("plain text", "{not json", '{"no": "level"}', "[1, 2]", ""):
        assert render(line) == line


def test_the_output_renders_whole_lines_and_keeps_each_threads_halves_together():
    target = io.StringIO()
    output = ReadableOutput(target)
    blob = json.dumps(EMF_BLOB)

    output.write(blob[:20])  # print() writes the text, then the newline
    writer = threading.Thread(target=lambda: output.write("from another thread\n"))
    writer.start()
    writer.join()
    output.write(blob[20:])
    output.write("\n")

    first, second = target.getvalue().splitlines()
    assert first == "from another thread"
    assert re.fullmatch(rf"{TIME} METRIC groupbuy SessionJoins=1 JoinLatency=12.5,3", second)
    assert "_aws" not in target.getvalue()


def test_a_request_is_logged_as_one_plain_line_with_its_status_time_and_correlation_id(caplog):
    def app(environ, start_response):
        return Response("{}", status=201, headers={"x-correlation-id": "cid-42"})(environ, start_response)

    client = Client(access_log(app, "x-correlation-id"))
    with caplog.at_level(logging.INFO, logger=REQUEST_LOGGER):
        client.post("/v1/sessions/ses_1/join")

    [record] = [record for record in caplog.records if record.name == REQUEST_LOGGER]
    assert re.fullmatch(r"POST /v1/sessions/ses_1/join 201 \d+ms cid=cid-42", record.getMessage())


def test_a_request_cannot_forge_a_log_line(caplog):
    def app(environ, start_response):
        return Response("", status=404, headers={"x-correlation-id": "c-1"})(environ, start_response)

    client = Client(access_log(app, "x-correlation-id"))
    with caplog.at_level(logging.INFO, logger=REQUEST_LOGGER):
        client.get("/v1/x%0a01:00:00.000%20INFO")

    [record] = [record for record in caplog.records if record.name == REQUEST_LOGGER]
    assert "\n" not in record.getMessage()
    assert record.getMessage().startswith("GET /v1/x\\x0a01:00:00.000 INFO 404 ")
