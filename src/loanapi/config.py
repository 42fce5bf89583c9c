"""Settings, read from the environment (prefix LOANAPI_) and an optional .env file."""

import logging
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

log = logging.getLogger("loanapi")

# Values copied from templates and tutorials; a deployment that keeps one is not secret.
PLACEHOLDER_SECRETS = frozenset(
    {"changethis", "change-me", "changeme", "secret", "secret-key", "your-secret-key", "please"}
)
MIN_SECRET_LENGTH = 32
RECOMMENDED_PASSWORD_LENGTH = 8


class Settings(BaseSettings):
    # An empty variable (compose passes unset ones as "") means "not set".
    # hide_input_in_errors: an invalid value is never printed back (a secret key, a password,
    # a database URL with its password): errors name the variable and say what is wrong.
    model_config = SettingsConfigDict(
        env_prefix="LOANAPI_",
        env_file=".env",
        extra="ignore",
        env_ignore_empty=True,
        hide_input_in_errors=True,
    )

    database_url: str = "sqlite+aiosqlite:///./loanapi.db"
    secret_key: str | None = None
    access_token_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # Below 8 only to accept what an old client registers (README, migrating); `serve` warns.
    password_min_length: int = Field(default=8, ge=1, le=128)
    pbkdf2_rounds: int = Field(default=600_000, ge=1_000)
    admin_username: str | None = None
    admin_email: str | None = None
    admin_password: str | None = None
    cors_origins: Annotated[list[str], NoDecode] = []
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    metrics: bool = True
    # Failed logins: a username is locked from one address after login_max_failures from it (an
    # attacker elsewhere cannot lock its owner out); an address after ..._per_address, whatever
    # the usernames; past login_slowdown_after failures for a username from any addresses, each
    # attempt for it waits, longer as they grow (up to 10 s), and the right password still works.
    login_max_failures: int = Field(default=10, ge=1)
    login_max_failures_per_address: int = Field(default=100, ge=1)
    login_slowdown_after: int = Field(default=50, ge=1)
    login_window_minutes: int = Field(default=15, ge=1)
    register_max_per_address: int = Field(default=20, ge=1)
    register_window_minutes: int = Field(default=60, ge=1)
    docs: bool = True
    db_pool_size: int = Field(default=10, ge=1)
    # How long a request waits for a database connection (on SQLite: for the write lock) before
    # it is answered 503 with Retry-After.
    db_timeout_seconds: float = Field(default=30, gt=0, le=600)
    # Close of business runs every day at this UTC time for the day before (SERVICING.md).
    cob_time: str = Field(default="00:05", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    # A full cron expression instead of cob_time (minute hour day month weekday, or with seconds
    # first as a sixth field): for operators with other needs, and for tests.
    cob_cron: str | None = None
    # On SQLite, `loanapi serve` runs the scheduled jobs and webhook deliveries itself (there is
    # no worker).
    jobs_in_process: bool = True
    # Webhook URLs: https only, public addresses only (EVENTS.md); both relaxations are for local
    # development and tests. Cloud metadata addresses are refused whatever these say.
    webhook_allow_http: bool = False
    webhook_allow_private: bool = False
    # How long a worker holds a delivery it claimed; one killed mid-attempt frees it after this.
    webhook_lease_seconds: int = Field(default=60, ge=11, le=3600)
    # Attempts a worker has in flight to one endpoint at most (each its own connection): a slow
    # or dead endpoint holds only these, at most a quarter of the worker's 1,024 (EVENTS.md: it
    # never slows the others); lower it for receivers that take few connections.
    webhook_endpoint_concurrency: int = Field(default=64, ge=1, le=256)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("secret_key")
    @classmethod
    def refuse_placeholder(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("LOANAPI_SECRET_KEY is a placeholder; set a random value")
        if len(value) < MIN_SECRET_LENGTH:
            raise ValueError(f"LOANAPI_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters")
        return value

    @field_validator("log_level")
    @classmethod
    def known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError(f"unknown log level {value!r}")
        return level

    @property
    def weak_passwords(self) -> bool:
        return self.password_min_length < RECOMMENDED_PASSWORD_LENGTH

    @property
    def cob_schedule(self) -> str:
        """The cron expression of the daily close of business."""
        if self.cob_cron:
            return self.cob_cron
        hour, minute = self.cob_time.split(":")
        return f"{int(minute)} {int(hour)} * * *"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def database_label(self) -> str:
        """Which database, for people: SQLite's file as an absolute path, a server's URL
        without its password."""
        url = make_url(self.database_url)
        if self.is_sqlite:
            file = url.database or ""
            return f"SQLite {Path(file).resolve() if file and file != ':memory:' else ':memory:'}"
        return url.render_as_string(hide_password=True)

    def with_secret(self) -> "Settings":
        """Return settings that carry a signing key, generating one for development."""
        if self.secret_key:
            return self
        log.warning(
            "LOANAPI_SECRET_KEY is not set: using a random key; tokens will not survive a restart"
        )
        return self.model_copy(update={"secret_key": secrets.token_urlsafe(48)})


def describe(error: ValidationError) -> str:
    """What is wrong with the configuration, one line per variable, naming each variable and
    never its value."""
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        name = "LOANAPI_" + "_".join(str(part) for part in item["loc"]).upper()
        message = item["msg"].removeprefix("Value error, ")
        lines.append(message if message.startswith(name) else f"{name}: {message}")
    return "; ".join(lines)


@lru_cache
def get_settings() -> Settings:
    return Settings().with_secret()
