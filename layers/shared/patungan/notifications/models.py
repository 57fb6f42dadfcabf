"""Notifications as the API shows them (API.md "Notifications")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from patungan.core.pagination import ListOf


class Notification(BaseModel):
    id: str
    type: str = Field(description="the domain event it reports, e.g. payment.completed")
    title: str
    body: str
    data: dict[str, Any] = Field(description="ids and amounts from the event, for the app to link to")
    read: bool
    created_at: str = Field(description="when the event happened")


class NotificationList(ListOf[Notification]):
    pass
