"""Patungan application package: shared by every function through the layer (/opt/python)."""
