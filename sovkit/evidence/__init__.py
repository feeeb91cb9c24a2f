"""Signed evidence packs of verify runs (pack.py, verify.py) and what changed between two runs (diff.py)."""
