"""Tables of stafftasks."""

from __future__ import annotations
