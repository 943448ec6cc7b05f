"""A real worker process for the tests: settings from SIYU_* environment variables, as in production."""

from __future__ import annotations

import logging
import os
import sys

from siyu.config import Settings
from siyu.db import Database, create_db_engine
from siyu.jobs.worker import run_worker


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    db = Database(create_db_engine(settings.database_url, settings))
    count = run_worker(db, settings=settings, worker_id=os.environ.get("TEST_WORKER_ID"))
    print(f"ran {count} jobs", flush=True)
    db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
