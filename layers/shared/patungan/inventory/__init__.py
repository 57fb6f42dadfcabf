"""Inventory: purchase orders to factories for group-buy demand and their receipt (GB-15, WH-4)."""
