"""Computed properties: per-contact aggregates of the event stream, kept up to date by sequence."""
