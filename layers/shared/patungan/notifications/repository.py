"""The Notifications table: one partition per user (``USER#id``), one item per notification
(``NOTIFICATION#id``), so a notification is only ever found through its owner. Index ``recent`` orders a
user's notifications by time; the sparse index ``unread`` holds only those not yet read (reading removes
its sort key), so an unread list never reads past read ones."""

from __future__ import annotations

from typing import Any

from patungan.adapters.dynamodb import DynamoTable
from patungan.core.errors import BadRequest, Conflict, NotFound
from patungan.core.pagination import Page, decode_cursor, encode_cursor
from patungan.notifications.models import Notification

RECENT_INDEX, RECENT_SORT_KEY = "recent", "recent_sk"
UNREAD_INDEX, UNREAD_SORT_KEY = "unread", "unread_sk"


class AlreadyNotified(Conflict):
    code = "already_notified"


def _user_partition(user_id: str) -> str:
    return f"USER#{user_id}"


def _key(user_id: str, notification_id: str) -> dict[str, str]:
    return {"pk": _user_partition(user_id), "sk": f"NOTIFICATION#{notification_id}"}


def _start_key(cursor: str | None, user_id: str, sort_key: str) -> dict[str, Any] | None:
    """The cursor's key, if it is one this list handed this user (not another user's, nor the other list's)."""
    start_key = decode_cursor(cursor)
    if start_key is not None and (
        set(start_key) != {"pk", "sk", sort_key} or start_key["pk"] != _user_partition(user_id)
    ):
        raise BadRequest("cursor is not one this API returned", code="invalid_cursor")
    return start_key


class NotificationsRepository:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def add(self, user_id: str, notification: Notification, event_id: str) -> None:
        """Write a new, unread notification; AlreadyNotified when it exists (its event was delivered before)."""
        time_key = f"{notification.created_at}#{notification.id}"
        self.table.put(
            {
                **_key(user_id, notification.id),
                RECENT_SORT_KEY: time_key,
                UNREAD_SORT_KEY: time_key,
                "user_id": user_id,
                "event_id": event_id,
                **notification.model_dump(),
            },
            condition="attribute_not_exists(pk)",
            on_fail=AlreadyNotified(f"notification {notification.id} exists"),
        )

    def mark_read(self, user_id: str, notification_id: str) -> Notification:
        item = self.table.update(
            _key(user_id, notification_id),
            f"SET #read = :read REMOVE {UNREAD_SORT_KEY}",
            condition="attribute_exists(pk)",
            names={"#read": "read"},
            values={":read": True},
            on_fail=NotFound(f"no notification {notification_id}"),
        )
        return Notification.model_validate(item)

    def list_for_user(self, user_id: str, *, unread_only: bool, limit: int, cursor: str | None) -> Page[Notification]:
        """Newest first."""
        index, sort_key = (UNREAD_INDEX, UNREAD_SORT_KEY) if unread_only else (RECENT_INDEX, RECENT_SORT_KEY)
        result = self.table.query(
            "pk = :pk",
            index=index,
            values={":pk": _user_partition(user_id)},
            limit=limit,
            start_key=_start_key(cursor, user_id, sort_key),
            forward=False,
        )
        return Page([Notification.model_validate(i) for i in result.items], encode_cursor(result.last_key))
