"""Tables of delivery."""

from __future__ import annotations
