"""Fulfilment: shipments booked with the courier, printable labels, tracking and delivery (LOG-2, LOG-3)."""
