"""Orders: one per group-buy participant on success (ORD-4); read side for buyers, factories, admins."""
