"""Recommendations: user portraits (decayed affinity per content tag) and content ranked for a person."""
