"""Groups (社群) by purpose, their members and numbers, and group codes (群活码)."""
