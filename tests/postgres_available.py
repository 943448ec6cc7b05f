"""Exit 0 when the PostgreSQL used by the tests answers, 1 otherwise (used by `make test`)."""

from __future__ import annotations

import os
import sys

import psycopg
from sqlalchemy.engine import make_url

url = make_url(os.environ.get("SIYU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
try:
    psycopg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database, connect_timeout=3
    ).close()
except psycopg.Error as exc:
    print(f"PostgreSQL unreachable: {exc}", file=sys.stderr)
    sys.exit(1)
