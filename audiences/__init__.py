"""The loyalty data and who is in an audience (the bottom layer: imports nothing of loyalflow)."""
