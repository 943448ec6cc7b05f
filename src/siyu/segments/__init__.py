"""Segments: saved rules over contacts with live membership, and the rule language they are written in."""
