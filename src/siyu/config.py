"""All settings in one place, read from `SIYU_` environment variables (and `.env`).

Every setting is documented in docs/en/configuration.md and docs/zh-CN/configuration.md;
tests/test_docs.py keeps that true.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_VAR_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIYU_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_VAR_DIR / 'siyu.db'}",
        description="SQLAlchemy URL. Default: an embedded SQLite file under ./var/. "
        "Production: postgresql+psycopg://user:pass@host/db",
    )
    database_echo: bool = Field(default=False, description="Log every SQL statement (debugging only).")
    sqlite_busy_timeout_ms: int = Field(
        default=10_000, ge=0, description="How long a SQLite writer waits for the lock before failing."
    )
    sqlite_synchronous: str = Field(
        default="FULL",
        pattern="^(OFF|NORMAL|FULL|EXTRA)$",
        description="SQLite PRAGMA synchronous. FULL makes every commit survive power loss, "
        "which is what 'a 2xx means durably committed' needs. The user-model pipeline's steps, which are "
        "computed again if lost, commit with NORMAL (docs/adr/0010).",
    )
    sqlite_checkpoint_ms: int = Field(
        default=1000,
        ge=0,
        description="How often a thread of `siyu serve` and `siyu worker` copies SQLite's write-ahead log into "
        "the database file (a checkpoint), so no commit has to; it also copies right after each pipeline step "
        "and drain, and commits checkpoint only past 400 MB of log. 0: SQLite's own checkpoint by whichever "
        "commit passes 4 MB of log.",
    )
    sqlite_cache_mb: int = Field(
        default=64,
        ge=1,
        description="SQLite page cache per connection, in MiB (PRAGMA cache_size). The user-model pipeline "
        "updates per-contact rows all over large tables; a cache that holds their upper levels saves reads.",
    )
    sqlite_writer_cache_mb: int = Field(
        default=1024,
        ge=1,
        description="SQLite page cache of the one connection that `siyu worker` writes through, "
        "in MiB. It is kept from one transaction to the next, so the pipeline finds the per-contact rows it "
        "updates in memory instead of on the disk; at a million contacts those tables take about 3 GB "
        "(docs/operations.md). Memory is taken as pages are read, up to this size.",
    )
    host: str = Field(default="127.0.0.1", description="Address `siyu serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `siyu serve` listens on.")
    events_max_batch: int = Field(default=1000, ge=1, description="Most events in one POST /api/v1/events.")
    events_max_body_bytes: int = Field(
        default=5 * 1024 * 1024, ge=1024, description="Largest request body POST /api/v1/events accepts."
    )
    session_ttl_hours: int = Field(default=12, ge=1, description="How long a staff sign-in session lasts.")
    job_lease_seconds: int = Field(
        default=60, ge=1, description="How long a worker holds a claimed job before others may take it back."
    )
    job_poll_seconds: float = Field(
        default=1.0, gt=0, description="How long an idle worker sleeps between looks for due jobs."
    )
    job_modules: str = Field(
        default="",
        description="Comma-separated extra Python modules the worker imports to register job handlers.",
    )
    secret_key: str = Field(
        default="",
        description="Secret for signing console forms (CSRF). Empty: one is generated and kept in "
        "var/secret_key. Set the same value on every server process in production.",
    )
    sign_in_max_failures: int = Field(
        default=5, ge=1, description="Wrong passwords in a row before a staff account is locked for a while."
    )
    sign_in_lock_minutes: int = Field(
        default=15, ge=1, description="How long an account stays locked after too many wrong passwords."
    )
    wecom_base_url: str = Field(
        default="https://qyapi.weixin.qq.com",
        description="Base URL of the WeCom server API. Tests and the demo point it at the local fake WeCom server.",
    )
    smtp_host: str = Field(
        default="", description="SMTP server for the e-mail delivery channel. Empty: the e-mail channel is off."
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port (587 submission, 465 SSL, 25).")
    smtp_username: str = Field(default="", description="SMTP login; empty: no login.")
    smtp_password: str = Field(default="", description="SMTP password for smtp_username.")
    smtp_starttls: bool = Field(default=True, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_ssl: bool = Field(default=False, description="Connect with SSL from the start (port 465) instead.")
    smtp_from: str = Field(
        default="",
        description="From address of delivery e-mails, e.g. 'Brand <noreply@brand.cn>'; its domain "
        "ends every Message-ID.",
    )
    smtp_timeout_seconds: float = Field(default=20.0, gt=0, description="How long one SMTP conversation may take.")
    delivery_link_base_url: str = Field(
        default="",
        description="Public base URL put before tracked links (/r/...) in webhook bodies and e-mails, "
        "e.g. https://siyu.brand.cn. Empty: links are sent as paths.",
    )
    delivery_webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long one delivery webhook POST may take before it is retried."
    )
    default_phone_region: str = Field(
        default="CN", description="Region assumed for phone numbers written without a country code."
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
