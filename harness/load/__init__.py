"""The locust plugin: load sessions, per-token records, shapes and the User classes."""
