"""Staff: the brand's people who own and serve contacts, with their roles."""
