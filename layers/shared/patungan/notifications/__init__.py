"""Notifications: in-app notifications for the domain events that concern a user (NOT-1, NOT-3)."""
