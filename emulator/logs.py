"""The local stack's log, made for a person to read (``make run``): one plain line per HTTP request, the
functions' Powertools JSON logs as ``time level service message key=value ...`` and their metric blobs
(CloudWatch EMF) as ``time METRIC service Name=value ...``. No colour codes anywhere.

The functions run in this process and write to ``sys.stdout`` (Powertools' logger handler, and ``print`` for
metrics); ``ReadableOutput`` stands in for it and renders each JSON line as it is written. ``--json-logs``
leaves those lines as they are.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any, TextIO

TIME_FORMAT = "%H:%M:%S"
LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-5s %(name)s %(message)s"
REQUEST_LOGGER = "http"
# Fields every Powertools log line carries that say nothing to a person reading the local log.
QUIET_FIELDS = frozenset(
    {
        "timestamp",
        "level",
        "service",
        "message",
        "location",
        "sampling_rate",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "xray_trace_id",
        "exception",
        "exception_name",
        "stack_trace",
    }
)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def configure(*, json_logs: bool = False) -> None:
    """Plain log lines for the emulator's own loggers; the functions' JSON lines rendered unless ``json_logs``.
    Call it before the stack imports any function (Powertools' logger keeps the stdout it found)."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt=TIME_FORMAT)
    for chatty in ("botocore.credentials", "responses"):  # a line per client and per webhook otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # A function decorated with log_metrics that published none warns on every cold start.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    if not json_logs:
        sys.stdout = ReadableOutput(sys.stdout)


def _clock(moment: float | None = None) -> str:
    moment = time.time() if moment is None else moment
    return f"{time.strftime(TIME_FORMAT, time.localtime(moment))}.{int(moment % 1 * 1000):03d}"


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    return json.dumps(text) if not text or any(c.isspace() for c in text) else text


def render(line: str) -> str | None:
    """A person's version of one line a function wrote: a Powertools JSON log line or an EMF metric blob.
    Anything else comes back as it was; None if the line is not worth showing (an EMF blob with no metric)."""
    if not line.startswith("{"):
        return line
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    if isinstance(record.get("_aws"), dict):
        return _render_metrics(record)
    if "level" in record and "message" in record:
        return _render_log(record)
    return line


def _render_metrics(record: dict[str, Any]) -> str | None:
    names = [
        metric["Name"]
        for directive in record["_aws"].get("CloudWatchMetrics", [])
        for metric in directive.get("Metrics", [])
    ]
    if not names:
        return None
    values = []
    for name in names:
        value = record.get(name)
        if isinstance(value, list):  # Powertools sends each metric's values as a list
            value = ",".join(f"{item:g}" if isinstance(item, float) else str(item) for item in value)
        values.append(f"{name}={value}")
    return f"{_clock()} METRIC {record.get('service', '-')} {' '.join(values)}"


def _render_log(record: dict[str, Any]) -> str:
    message = record["message"]
    text = message if isinstance(message, str) else json.dumps(message, default=str)
    extras = " ".join(f"{key}={_value(value)}" for key, value in record.items() if key not in QUIET_FIELDS)
    line = f"{_clock()} {record['level']:<5} {record.get('service', '-')} {text}"
    if extras:
        line += f" {extras}"
    trace = record.get("exception") or record.get("stack_trace")
    if trace:
        line += "\n" + "\n".join(f"    {part}" for part in str(trace).splitlines())
    return line


class ReadableOutput(io.TextIOBase):
    """A text stream that renders each complete line with ``render`` and writes it to ``target``. Lines are
    gathered per thread, so two functions printing at once do not mix their halves."""

    def __init__(self, target: TextIO) -> None:
        self._target = target
        self._lock = threading.Lock()
        self._partial = threading.local()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        pending = getattr(self._partial, "text", "") + text
        *lines, self._partial.text = pending.split("\n")
        shown = [rendered for line in lines if (rendered := render(line)) is not None]
        if shown:
            with self._lock:
                self._target.write("".join(f"{line}\n" for line in shown))
                self._target.flush()
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", "utf-8")


def _printable(text: str) -> str:
    """What a client sent, with control characters escaped: a request cannot write a log line of its own."""
    return "".join(char if char.isprintable() else f"\\x{ord(char):02x}" for char in text)


def access_log(app: WsgiApp, correlation_header: str) -> WsgiApp:
    """``app``, logging one line per request: method, path, status, milliseconds, correlation id."""
    logger = logging.getLogger(REQUEST_LOGGER)

    def logged(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        answer: dict[str, Any] = {}

        def remember(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            answer["status"], answer["headers"] = status.split(" ", 1)[0], headers
            return start_response(status, headers, *args)

        try:
            return app(environ, remember)
        finally:
            correlation = next(
                (value for name, value in answer.get("headers", []) if name.lower() == correlation_header), "-"
            )
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            logger.info(
                "%s %s %s %.0fms cid=%s",
                _printable(environ.get("REQUEST_METHOD", "-")),
                _printable(path),
                answer.get("status", "-"),
                (time.perf_counter() - started) * 1000,
                _printable(correlation),
            )

    return logged
