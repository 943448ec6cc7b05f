"""Workspaces: one brand's isolated data."""
