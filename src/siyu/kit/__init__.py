"""Shared building blocks: time, errors, pagination, schema base."""
