"""Who is calling: API keys and staff sessions, scopes, roles, and the route dependencies."""
