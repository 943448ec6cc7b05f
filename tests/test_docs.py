"""Docs that tests keep true: every setting, CLI command, scope and standard event type is documented,
in English and in Chinese, and the README opens with the two commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from siyu.auth.scopes import Scope
from siyu.cli import app as cli_app
from siyu.config import Settings
from siyu.events.catalog import STANDARD_EVENT_TYPES

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = ["en", "zh-CN"]


def _doc(lang: str, name: str) -> str:
    return (ROOT / "docs" / lang / name).read_text(encoding="utf-8")


def _cli_commands(app: typer.Typer, prefix: tuple[str, ...] = ()) -> list[str]:
    commands = [" ".join(("siyu", *prefix, c.name or c.callback.__name__)) for c in app.registered_commands]  # type: ignore[union-attr]
    for group in app.registered_groups:
        assert group.typer_instance is not None and group.name
        commands += _cli_commands(group.typer_instance, (*prefix, group.name))
    return commands


def test_every_english_page_has_a_chinese_one() -> None:
    english = {p.name for p in (ROOT / "docs/en").glob("*.md")}
    chinese = {p.name for p in (ROOT / "docs/zh-CN").glob("*.md")}
    assert english and english == chinese


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_setting_is_documented(lang: str) -> None:
    text = _doc(lang, "configuration.md")
    missing = [f"SIYU_{name.upper()}" for name in Settings.model_fields if f"`SIYU_{name.upper()}`" not in text]
    assert not missing, f"docs/{lang}/configuration.md lacks {missing}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_cli_command_is_documented(lang: str) -> None:
    commands = _cli_commands(cli_app)
    assert "siyu workspace create" in commands and "siyu apikey revoke" in commands
    text = _doc(lang, "cli.md")
    missing = [c for c in commands if f"`{c}" not in text]
    assert not missing, f"docs/{lang}/cli.md lacks {missing}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_standard_event_type_is_documented(lang: str) -> None:
    text = _doc(lang, "events.md")
    missing = [t for t in STANDARD_EVENT_TYPES if f"`{t}`" not in text]
    assert not missing, f"docs/{lang}/events.md lacks {missing}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_scope_is_documented(lang: str) -> None:
    text = _doc(lang, "api.md")
    missing = [s.value for s in Scope if f"`{s.value}`" not in text]
    assert not missing, f"docs/{lang}/api.md lacks {missing}"


def test_readme_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert first_block is not None
    lines = [line.split("#")[0].strip() for line in first_block.group(1).strip().splitlines()]
    assert lines == ["make run", "make test"]
    ci = (ROOT / ".ci/run").read_text()
    assert "make test" in ci
