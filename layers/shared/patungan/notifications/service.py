"""Notification use cases: turning a domain event into one in-app notification for the user it concerns
(NOT-1, deduplicated on the event id: SYS-1), listing a user's notifications and marking them read."""

from __future__ import annotations

from functools import cache

from patungan.adapters.dynamodb import DynamoTable
from patungan.core.auth import Principal
from patungan.core.clock import parse_iso, to_iso
from patungan.core.config import get_settings
from patungan.core.events import DomainEvent
from patungan.core.observability import logger
from patungan.core.pagination import Page
from patungan.notifications.messages import NOTIFYING_EVENTS
from patungan.notifications.models import Notification
from patungan.notifications.repository import AlreadyNotified, NotificationsRepository

# The user id of the platform's own top-up participant (GB-12): not a person, so never notified.
PLATFORM_USER_ID = "platform"


def notification_id_for(event_id: str) -> str:
    """One notification per event: its id is the event's, so a redelivered event finds it already written."""
    return f"ntf_{event_id.removeprefix('evt_')}"


class NotificationService:
    def __init__(self, repository: NotificationsRepository) -> None:
        self.repository = repository

    def notify(self, event: DomainEvent) -> Notification | None:
        """The notification ``event`` gives its user; None when it notifies nobody or was already written."""
        data_model = NOTIFYING_EVENTS.get(event.type)
        if data_model is None:
            logger.debug("event type notifies nobody", extra={"event_id": event.event_id, "type": event.type})
            return None
        data = data_model.model_validate(event.data)
        if data.user_id == PLATFORM_USER_ID or data.is_platform:
            logger.debug("platform participant is not notified", extra={"event_id": event.event_id})
            return None
        message = data.message()
        if message is None:
            logger.debug("event is no news to its user", extra={"event_id": event.event_id, "type": event.type})
            return None
        notification = Notification(
            id=notification_id_for(event.event_id),
            type=event.type,
            title=message.title,
            body=message.body,
            data=data.details(),
            read=False,
            # One spelling of time, so the time-ordered index sorts notifications correctly.
            created_at=to_iso(parse_iso(event.occurred_at)),
        )
        try:
            self.repository.add(data.user_id, notification, event.event_id)
        except AlreadyNotified:
            logger.info("event delivered again; already notified", extra={"event_id": event.event_id})
            return None
        return notification

    def list_notifications(
        self, principal: Principal, *, unread_only: bool, limit: int, cursor: str | None
    ) -> Page[Notification]:
        return self.repository.list_for_user(principal.user_id, unread_only=unread_only, limit=limit, cursor=cursor)

    def mark_read(self, principal: Principal, notification_id: str) -> Notification:
        """Idempotent; someone else's notification is as unknown as a missing one (404)."""
        return self.repository.mark_read(principal.user_id, notification_id)


@cache
def notification_service() -> NotificationService:
    return NotificationService(NotificationsRepository(DynamoTable(get_settings().notifications_table)))
