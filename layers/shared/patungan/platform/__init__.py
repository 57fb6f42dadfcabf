"""Platform plumbing: the outbox relay."""
