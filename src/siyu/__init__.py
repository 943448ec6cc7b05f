"""siyu (私域): the open private-domain operations platform."""

__version__ = "0.1.0"
