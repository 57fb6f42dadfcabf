"""Webhooks the local stand-ins (the local Xendit, the local courier) send to the Function URLs of the local
stack, and the background timer they run on.

``WebhookSender(base_url, scheduler, *, sender, headers={}, query={})`` POSTs a JSON body to
``{base_url}/_url/{FunctionLogicalId}/`` with the sender's fixed ``headers`` and ``query`` (how each service
proves itself: the local Xendit a callback-token header, the local courier a token in the URL). Deliveries go
out from a few background threads (never inside the request that caused them, so a caller that waits on the
stand-in cannot deadlock); those of one resource one at a time, in the order they happened, those of
different resources in parallel. Connection errors and 5xx are retried a few times with backoff; like Xendit,
a read timeout is not retried. Every attempt's outcome goes to the ``record`` callback given with the body, so
a stand-in can show what its webhooks got; a missing function (404) is an outcome, not a crash.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import requests
from werkzeug.wrappers import Request

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 10
WEBHOOK_MAX_ATTEMPTS = 5
WEBHOOK_FIRST_BACKOFF_SECONDS = 0.2
# The stack behind the webhooks runs one invocation at a time; a few callbacks in flight keep it busy while
# each one's HTTP round trip is under way (one thread at a time left it idle between callbacks).
WEBHOOK_DELIVERY_THREADS = 4


def delivers(request: Request) -> bool:
    """``?deliver=false`` on a simulation: change the thing here, but send no webhook (drift to reconcile)."""
    return request.args.get("deliver", "true").lower() != "false"


class Scheduler:
    """One background thread that runs actions when they fall due: settlements, expiries, webhook retries."""

    def __init__(self, name: str) -> None:
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()  # ties run in the order they were scheduled
        self._wakeup = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def call_later(self, delay_seconds: float, action: Callable[[], None]) -> None:
        with self._wakeup:
            heapq.heappush(self._due, (time.monotonic() + delay_seconds, next(self._order), action))
            self._wakeup.notify()

    def close(self) -> None:
        with self._wakeup:
            self._closed = True
            self._wakeup.notify()
        self._thread.join(timeout=WEBHOOK_TIMEOUT_SECONDS + 1)

    def _run(self) -> None:
        while (action := self._next_due()) is not None:
            try:
                action()
            except Exception:
                logger.exception("%s: a background action failed", self._thread.name)

    def _next_due(self) -> Callable[[], None] | None:
        with self._wakeup:
            while not self._closed:
                if self._due and self._due[0][0] <= time.monotonic():
                    return heapq.heappop(self._due)[2]
                self._wakeup.wait(self._due[0][0] - time.monotonic() if self._due else None)
            return None


@dataclass(frozen=True)
class DeliveryOutcome:
    """One attempt at a webhook: the HTTP status it got, or why it got none (``failure``)."""

    attempt: int
    http_status: int | None
    failure: str | None
    final: bool  # no further attempt follows

    @property
    def text(self) -> str:
        outcome = f"HTTP {self.http_status}" if self.http_status is not None else str(self.failure)
        return outcome if self.final else f"{outcome}; retrying"


def _ignore(_: DeliveryOutcome) -> None:
    pass


class WebhookSender:
    """POSTs webhooks to the Function URLs of the local stack, retrying connection errors and 5xx; those of one
    resource (invoice, refund, payout, courier order id) one at a time, in order."""

    def __init__(
        self,
        base_url: str,
        scheduler: Scheduler,
        *,
        sender: str,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url
        self.scheduler = scheduler
        self._sender = sender
        self._headers = {**(headers or {}), "content-type": "application/json"}
        self._query = dict(query or {})
        self._workers = ThreadPoolExecutor(WEBHOOK_DELIVERY_THREADS, thread_name_prefix=f"{sender}-webhooks")
        self._lock = threading.Lock()
        # resource id -> its deliveries not made yet; an id is here while one worker delivers its callbacks
        self._pending: dict[str, deque[Callable[[], None]]] = {}
        self._closed = False
        self._thread_session = threading.local()  # requests.Session is not thread-safe: one per worker
        self._sessions: list[requests.Session] = []

    def send(
        self,
        function_logical_id: str,
        resource_id: str,
        body: dict[str, Any],
        record: Callable[[DeliveryOutcome], None] = _ignore,
    ) -> None:
        url = f"{self.base_url.rstrip('/')}/_url/{function_logical_id}/"
        self._enqueue(resource_id, partial(self._attempt, url, resource_id, body, record, 1))

    def close(self) -> None:
        """Stop taking callbacks, let the POSTs under way finish, and drop the rest."""
        with self._lock:
            self._closed = True
        self._workers.shutdown(wait=True, cancel_futures=True)
        for session in self._sessions:
            session.close()

    def _enqueue(self, resource_id: str, delivery: Callable[[], None]) -> None:
        with self._lock:
            if self._closed:
                return
            if resource_id in self._pending:  # its worker takes this one after the earlier ones
                self._pending[resource_id].append(delivery)
                return
            self._pending[resource_id] = deque([delivery])
            self._workers.submit(self._deliver_all, resource_id)  # under the lock: close() cannot come between

    def _deliver_all(self, resource_id: str) -> None:
        while True:
            with self._lock:
                pending = self._pending[resource_id]
                if self._closed or not pending:
                    del self._pending[resource_id]
                    return
                delivery = pending.popleft()
            try:
                delivery()
            except Exception:  # a worker thread has nobody to raise to
                logger.exception("%s: a webhook delivery failed", self._sender)

    def _session(self) -> requests.Session:
        session = getattr(self._thread_session, "session", None)
        if session is None:
            session = self._thread_session.session = requests.Session()
            with self._lock:
                self._sessions.append(session)
        return session

    def _attempt(
        self,
        url: str,
        resource_id: str,
        body: dict[str, Any],
        record: Callable[[DeliveryOutcome], None],
        attempt: int,
    ) -> None:
        status: int | None = None
        try:
            response = self._session().post(
                url, params=self._query, data=json.dumps(body), headers=self._headers, timeout=WEBHOOK_TIMEOUT_SECONDS
            )
        except requests.ReadTimeout:
            logger.error("%s: webhook to %s timed out; not retried, as Xendit does not", self._sender, url)
            record(DeliveryOutcome(attempt, None, "timed out", final=True))
            return
        except requests.ConnectionError as exc:
            failure = f"connection error: {exc}"
        else:
            status = response.status_code
            if status < 500:
                if status >= 400:
                    logger.error("%s: webhook to %s refused with %s", self._sender, url, status)
                record(DeliveryOutcome(attempt, status, None, final=True))
                return
            failure = f"HTTP {status}"
        if attempt >= WEBHOOK_MAX_ATTEMPTS:
            logger.error("%s: gave up delivering to %s after %s attempts (%s)", self._sender, url, attempt, failure)
            record(DeliveryOutcome(attempt, status, None if status else failure, final=True))
            return
        record(DeliveryOutcome(attempt, status, None if status else failure, final=False))
        logger.warning("%s: webhook to %s failed (%s); retrying", self._sender, url, failure)
        backoff = WEBHOOK_FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1)
        retry = partial(self._attempt, url, resource_id, body, record, attempt + 1)
        self.scheduler.call_later(backoff, partial(self._enqueue, resource_id, retry))
