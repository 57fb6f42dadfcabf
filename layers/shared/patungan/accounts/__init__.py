"""Accounts: users' addresses (ACC-2)."""
