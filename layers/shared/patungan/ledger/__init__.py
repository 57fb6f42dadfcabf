"""Ledger: double-entry bookkeeping of every money movement (PAY-5) and the wallets it holds (WAL-1, WAL-3)."""
