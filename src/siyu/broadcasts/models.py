"""Tables of broadcasts."""

from __future__ import annotations
