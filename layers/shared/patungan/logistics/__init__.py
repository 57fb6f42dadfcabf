"""Logistics: shipping rates from a courier aggregator (LOG-1); shipments and tracking come next (LOG-2)."""
