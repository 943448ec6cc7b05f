"""Fixtures for the job queue tests, imported by the test modules that use them (as *_fixture).

(Not a conftest.py: tests/ has no __init__.py, so a second conftest here would be imported under the
same module name `conftest` and shadow the top-level one that other tests import helpers from.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jobs_test_handlers import effect_metadata

from siyu.db import Database
from siyu.jobs import Registry


@pytest.fixture(name="registry")
def registry_fixture() -> Registry:
    """A fresh registry per test, so test handlers and schedules never leak into other tests."""
    return Registry()


@pytest.fixture(name="effect_table")
def effect_table_fixture(db: Database) -> Iterator[None]:
    """The job_test_effect table, created for the test and dropped after it (it is not in the schema)."""
    effect_metadata.drop_all(db.engine, checkfirst=True)
    effect_metadata.create_all(db.engine)
    yield
    effect_metadata.drop_all(db.engine, checkfirst=True)
