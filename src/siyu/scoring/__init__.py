"""Built-in models: lifecycle stage, RFM and value tiers, intention, transaction stages, with reasons."""
