"""Channels, channel codes (渠道活码) and attribution of new contacts to them."""
