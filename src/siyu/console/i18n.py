"""Languages of the console: zh-CN and en, from gettext catalogs compiled in memory at first use.

The catalogs are `i18n/<locale>/LC_MESSAGES/*.po`: `messages.po` for the console itself and one file per
later domain (`journeys.po`, `delivery.po` ...), so work on two domains never edits the same catalog.
There is no committed .mo to fall out of date: `translations()` parses them with Babel, merges them and
compiles the result into memory once per process. English
is the source language, so `en` needs no translations. The language comes from the `siyu_lang` cookie
(the switch in the top bar), else from the browser's Accept-Language, else zh-CN.
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

I18N_DIR = Path(__file__).parent / "i18n"
LANG_COOKIE = "siyu_lang"
DEFAULT_LANGUAGE = "zh-CN"
# language tag (cookie, <html lang>) -> gettext/Babel locale
LANGUAGES = {"zh-CN": "zh_CN", "en": "en"}
LANGUAGE_NAMES = {"zh-CN": "中文", "en": "English"}


def catalog_paths(language: str) -> list[Path]:
    return sorted((I18N_DIR / LANGUAGES[language] / "LC_MESSAGES").glob("*.po"))


def read_catalog(language: str) -> Catalog:
    """Every .po of the language merged into one catalog; a message defined twice is an error."""
    merged = Catalog(locale=LANGUAGES[language])
    for path in catalog_paths(language):
        with path.open("rb") as handle:
            part = read_po(handle, locale=LANGUAGES[language])
        for message in part:
            if not message.id:
                continue
            if message.id in merged:
                raise ValueError(f"{path.name}: message {message.id!r} is already in another catalog")
            merged[message.id] = message
    return merged


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> gettext.NullTranslations:
    if not catalog_paths(language):
        return gettext.NullTranslations()
    catalog = read_catalog(language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGUAGES:
        return cookie
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, index, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LANGUAGE


class Formatter:
    """Dates, times and numbers the way the reader's language writes them, in the workspace's zone."""

    def __init__(self, language: str, timezone: str) -> None:
        self.locale = Locale.parse(LANGUAGES[language])
        try:
            self.tz = ZoneInfo(timezone)
        except (KeyError, ValueError):
            self.tz = ZoneInfo("Asia/Shanghai")

    def datetime(self, value: dt.datetime | None, form: str = "short") -> str:
        if value is None:
            return ""
        return format_datetime(value, form, tzinfo=self.tz, locale=self.locale)

    def date(self, value: dt.date | None, form: str = "medium") -> str:
        return "" if value is None else format_date(value, form, locale=self.locale)

    def number(self, value: float | None) -> str:
        return "" if value is None else format_decimal(value, locale=self.locale)

    def today(self, now: dt.datetime) -> dt.date:
        return now.astimezone(self.tz).date()
