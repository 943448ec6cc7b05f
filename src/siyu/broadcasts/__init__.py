"""Broadcasts (群发) to a segment, a tag filter or groups, now or scheduled, planned with budgets applied."""
