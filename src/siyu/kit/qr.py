"""QR images of public pages (channel codes /c/…, group codes /g/…), as PNG or SVG responses."""

from __future__ import annotations

import io

import segno
from fastapi import Request, Response


def public_url(request: Request, path: str) -> str:
    """The absolute URL of one of our public pages, as the caller reached this server."""
    return str(request.base_url).rstrip("/") + path


def qr_response(url: str, kind: str, scale: int = 10) -> Response:
    """`url` as a QR image: kind "png" or "svg"."""
    buffer = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buffer, kind=kind, scale=scale, border=2)
    return Response(buffer.getvalue(), media_type="image/png" if kind == "png" else "image/svg+xml")
