"""Payments: invoices (escrow), webhooks through an inbox, refunds (PAY-1..PAY-4, PAY-9)."""
