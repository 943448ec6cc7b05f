"""The operator console: server-rendered pages (Jinja2 + HTMX) under /console.

Layout, shared partials, static files (vendored htmx and ECharts), the zh-CN/en catalogs, CSRF and
the render helper live here; each domain's pages live in its own `console.py` (contacts, tags).
"""
