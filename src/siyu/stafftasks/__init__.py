"""Staff tasks: each staff member's inbox for today (follow-ups, birthdays, journey tasks, unanswered
messages), with escalation."""
