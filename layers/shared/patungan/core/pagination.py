"""List pagination: opaque cursors over DynamoDB's LastEvaluatedKey, limits as API.md says."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel

from patungan.core.errors import BadRequest
from patungan.core.inputs import MAX_ID_LENGTH

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# Our cursors are a few hundred characters (a table key and an index key, base64).
MAX_CURSOR_LENGTH = 1024

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    raw = json.dumps(last_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise invalid_cursor() from exc
    if not isinstance(value, dict):
        raise invalid_cursor()
    return value


def invalid_cursor() -> BadRequest:
    return BadRequest("cursor is not one this API returned", code="invalid_cursor")


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size (default {DEFAULT_LIMIT})")]
Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH, description="the next_cursor of the previous page")]
# A list filtered by an id (or a word such as a status): longer than any id we issue, it is refused (422).
IdFilter = Annotated[str | None, Query(max_length=MAX_ID_LENGTH)]


class ListOf(BaseModel, Generic[T]):
    """A list response as the OpenAPI document shows it (API.md: ``{"items": [...], "next_cursor"}``); each list
    subclasses it, ``class SessionList(ListOf[SessionView])``, so its schema keeps a plain name."""

    items: list[T]
    next_cursor: str | None


def page_body(page: Page[T], render: Callable[[T], Any]) -> dict[str, Any]:
    """A list response as API.md shows lists: ``{"items": [...], "next_cursor": ...}``."""
    return {"items": [render(item) for item in page.items], "next_cursor": page.next_cursor}
