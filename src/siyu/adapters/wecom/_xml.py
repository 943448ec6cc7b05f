"""Safe XML for WeCom callbacks: UTF-8 only, no DOCTYPE, no entities, bounded size.

The stdlib parser expands internal entities (billion laughs) and a DOCTYPE is the only way to declare
them, so a document carrying one is refused before parsing — the defusedxml policy, without the dependency.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from siyu.adapters.wecom.errors import MalformedCallback

MAX_XML_BYTES = 256 * 1024
_FORBIDDEN = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def parse_xml(data: bytes | str) -> ET.Element:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_XML_BYTES:
        raise MalformedCallback(f"callback XML is {len(raw)} bytes; at most {MAX_XML_BYTES} are accepted")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedCallback("callback XML is not UTF-8") from exc
    if _FORBIDDEN.search(text):
        raise MalformedCallback("callback XML with a DOCTYPE or entity declaration is refused")
    try:
        root = ET.fromstring(text)  # noqa: S314 - DOCTYPE/ENTITY refused above
    except ET.ParseError as exc:
        raise MalformedCallback(f"callback XML does not parse: {exc}") from exc
    return root


def child_text(root: ET.Element, name: str) -> str | None:
    node = root.find(name)
    if node is None:
        return None
    return (node.text or "").strip()
