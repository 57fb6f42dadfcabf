"""Wallet: withdrawals to a bank account or e-wallet through Xendit payouts (WAL-2)."""
