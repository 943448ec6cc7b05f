"""Fixtures for the job queue tests: a private handler registry and a table handlers write to."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from siyu.db import Database
from siyu.jobs import Registry

HERE = Path(__file__).resolve().parent
# The worker subprocess imports jobs_test_handlers from here; in-process tests import it the same way.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from jobs_test_handlers import effect_metadata  # noqa: E402


@pytest.fixture
def registry() -> Registry:
    """A fresh registry per test, so test handlers and schedules never leak into other tests."""
    return Registry()


@pytest.fixture
def effect_table(db: Database) -> Iterator[None]:
    """The job_test_effect table, created for the test and dropped after it (it is not in the schema)."""
    effect_metadata.drop_all(db.engine, checkfirst=True)
    effect_metadata.create_all(db.engine)
    yield
    effect_metadata.drop_all(db.engine, checkfirst=True)
