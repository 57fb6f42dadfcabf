"""A scripted courier for the courier adapter's tests: real HTTP, the replies a test chooses."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from patungan.logistics.courier import BiteshipCourier
from tests.support.servers import serving

API_KEY = "biteship_test.NOT_A_SECRET"


@dataclass
class ScriptedCourier:
    """A courier that answers each request with the next scripted reply (the last one repeats); it records
    what it was sent. A reply of ``None`` holds the request until the test ends (a courier too slow)."""

    replies: list[tuple[int, Any] | None]
    requests: list[dict[str, Any]] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        data = request.get_data()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "authorization": request.headers.get("Authorization"),
                "content_type": request.headers.get("Content-Type"),
                "body": json.loads(data) if data else None,
            }
        )
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if reply is None:
            self.released.wait(30)
            reply = (504, {})  # too late: the adapter has given up on it
        status, body = reply
        return Response(json.dumps(body), status=status, mimetype="application/json")(environ, start_response)


@contextmanager
def courier_at(app: Callable[..., Any], *, timeout_seconds: float = 5.0, max_attempts: int = 3) -> Iterator[Any]:
    sleeps: list[float] = []
    with serving(app) as url:
        try:
            yield BiteshipCourier(
                url, lambda: API_KEY, timeout_seconds=timeout_seconds, max_attempts=max_attempts, sleep=sleeps.append
            )
        finally:
            if isinstance(app, ScriptedCourier):
                app.released.set()
