"""Contacts: one profile per person, with identities on many platforms, attributes, notes, merges."""
