"""Fulfilment: shipments, labels and tracking (LOG-2, LOG-3)."""
