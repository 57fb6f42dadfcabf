"""The local stack: runs template.yaml on this machine with moto, no AWS account and no Docker."""
