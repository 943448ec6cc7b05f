"""Delivery engine: every send is one row keyed (source, step, contact, entry) with its outcome;
channels, contact budgets, quiet hours, opt-outs and staff account limits."""
