"""Catalog: factories, sellers, products with categories and variants (CAT-1..CAT-3)."""
