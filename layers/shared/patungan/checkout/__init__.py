"""Checkout: carts, one pricing engine for preview and confirm, promotions, the confirm saga (CHK-*, PRM-*)."""
