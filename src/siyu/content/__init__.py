"""The content library (内容库), tracked links (/r/{token}) and content portraits."""
