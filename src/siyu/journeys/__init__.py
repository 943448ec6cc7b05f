"""SOP journeys: versioned definitions, triggers, enrolments with timers, steps, goals, holdouts and
per-step numbers."""
