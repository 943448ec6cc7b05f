"""Smart tags: rules that put a tag on contacts (and take it off) by segment rule or by message keywords."""
