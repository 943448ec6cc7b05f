"""Events: the append-only record of what each contact did, numbered per workspace."""
