"""Test support: AWS on moto built from template.yaml, and handler invocation with sample events."""
