"""Cross-cutting building blocks: money, ids, clock, config, errors, HTTP, events, observability."""
