"""Every message of the console has a zh-CN translation, with the same placeholders; dates and numbers
follow the reader's language."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from babel.messages.extract import extract_from_dir

import siyu
from siyu.console.i18n import Formatter, negotiate, read_catalog, translations

SRC = Path(siyu.__file__).parent
METHODS = [
    ("**/console.py", "python"),
    ("**/console/*.py", "python"),
    ("**/console/templates/**.html", "jinja2"),
]
OPTIONS = {"**/console/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _used_msgids() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(SRC), method_map=METHODS, options_map=OPTIONS, keywords={"_": None, "gettext": None}
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_console_message_has_a_chinese_translation() -> None:
    used = _used_msgids()
    assert len(used) > 100  # the extraction sees the templates and the console modules
    catalog = read_catalog("zh-CN")
    missing = sorted(m for m in used if not (catalog.get(m) and catalog.get(m).string and not catalog.get(m).fuzzy))
    assert not missing, f"add these to a catalog in src/siyu/console/i18n/zh_CN/LC_MESSAGES/: {missing}"
    for msgid in used:
        translated = catalog.get(msgid).string
        assert set(PLACEHOLDER.findall(msgid)) == set(PLACEHOLDER.findall(translated)), msgid
    stale = sorted(m.id for m in catalog if m.id and m.id not in used)
    assert not stale, f"no longer used; remove from the catalog: {stale}"


def test_catalog_compiles_in_memory() -> None:
    assert translations("zh-CN").gettext("Contacts") == "客户"
    assert translations("en").gettext("Contacts") == "Contacts"


def test_language_negotiation() -> None:
    assert negotiate(None, None) == "zh-CN"
    assert negotiate(None, "en-US,en;q=0.9") == "en"
    assert negotiate(None, "fr-FR, en;q=0.5, zh;q=0.8") == "zh-CN"
    assert negotiate(None, "fr-FR") == "zh-CN"
    assert negotiate("en", "zh-CN") == "en"
    assert negotiate("xx", "en") == "en"


def test_dates_and_numbers_follow_the_language() -> None:
    at = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
    zh, en = Formatter("zh-CN", "Asia/Shanghai"), Formatter("en", "Asia/Shanghai")
    assert zh.datetime(at) == "2026/11/23 10:00"
    assert "11/23/26" in en.datetime(at) and "10:00" in en.datetime(at)
    assert zh.date(at.date()) == "2026年11月23日"
    assert en.date(at.date()) == "Nov 23, 2026"
    assert en.number(1234567) == "1,234,567" and zh.number(1234567) == "1,234,567"
