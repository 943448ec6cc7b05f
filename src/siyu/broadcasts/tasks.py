"""Worker wiring of broadcasts: job handlers, cron schedules and pollers (imported by every worker)."""

from __future__ import annotations
