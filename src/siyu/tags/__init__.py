"""Tags and tag groups; every tag change is recorded with who, when and why."""
