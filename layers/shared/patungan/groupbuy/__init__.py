"""Group buying: sessions, one join per buyer, escrow, deadline settlement (GB-1..GB-16)."""
