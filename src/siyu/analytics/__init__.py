"""Read-only numbers across domains for the console's overview (dashboard) and list pages."""
