"""Worker wiring of stafftasks: job handlers, cron schedules and pollers (imported by every worker)."""

from __future__ import annotations
