"""Benchmarks: `python -m bench` runs them all; `python -m bench.ingest` or `python -m bench.contacts_list` one.

They are not tests. Each prints what it measured next to the ceiling it compares to, measured in the same
run on the same machine, as medians and ratios (machines are noisy), and says whether each target was met.
"""
