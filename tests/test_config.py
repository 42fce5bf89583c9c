"""Settings: safe defaults, refused placeholder secrets, values from the environment."""

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from loanapi.config import Settings, describe

GOOD_KEY = "k" * 32


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Defaults are what the code says, not what this machine's environment or .env says."""
    for name in list(os.environ):
        if name.startswith("LOANAPI_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "placeholder",
    ["changethis", "CHANGETHIS", " changethis ", "change-me", "changeme", "secret", "please"],
)
def test_placeholder_secret_is_refused(placeholder):
    with pytest.raises(ValidationError) as info:
        settings(secret_key=placeholder)
    assert info.value.errors()[0]["loc"] == ("secret_key",)
    assert "placeholder" in str(info.value)


def test_an_invalid_value_is_never_shown_in_the_error():
    """Wherever the error is printed (a traceback from the server's factory too)."""
    with pytest.raises(ValidationError) as info:
        settings(secret_key="my-real-but-short-secret", admin_password=1234567)
    assert "my-real-but-short-secret" not in str(info.value)
    assert "1234567" not in str(info.value)
    assert describe(info.value) == (
        "LOANAPI_SECRET_KEY must be at least 32 characters; "
        "LOANAPI_ADMIN_PASSWORD: Input should be a valid string"
    )


def test_placeholder_secret_from_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("LOANAPI_SECRET_KEY", "changethis")
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert info.value.errors()[0]["loc"] == ("secret_key",)


@pytest.mark.parametrize("key", ["x", "short-key", "k" * 31])
def test_short_secret_is_refused(key):
    with pytest.raises(ValidationError) as info:
        settings(secret_key=key)
    assert info.value.errors()[0]["loc"] == ("secret_key",)
    assert "32" in str(info.value)


def test_secret_of_32_characters_is_accepted():
    configured = settings(secret_key=GOOD_KEY)
    assert configured.secret_key == GOOD_KEY
    assert configured.with_secret().secret_key == GOOD_KEY


def test_secret_from_the_environment(monkeypatch):
    key = "e" * 40
    monkeypatch.setenv("LOANAPI_SECRET_KEY", key)
    assert Settings(_env_file=None).secret_key == key  # type: ignore[call-arg]


@pytest.mark.parametrize("empty", [None, ""])
def test_without_a_key_with_secret_generates_one(empty):
    configured = settings(secret_key=empty)
    assert configured.secret_key is None
    first = configured.with_secret()
    second = configured.with_secret()
    assert isinstance(first.secret_key, str)
    assert len(first.secret_key) >= 32
    assert first.secret_key.lower() not in {"changethis", "secret"}
    # Random each time, and the original settings are left alone.
    assert first.secret_key != second.secret_key
    assert configured.secret_key is None
    assert first.database_url == configured.database_url


def test_cors_origins_from_a_comma_separated_environment_value(monkeypatch):
    monkeypatch.setenv(
        "LOANAPI_CORS_ORIGINS",
        "https://a.example.com, https://b.example.com ,,http://localhost:3000",
    )
    configured = Settings(_env_file=None)  # type: ignore[call-arg]
    assert configured.cors_origins == [
        "https://a.example.com",
        "https://b.example.com",
        "http://localhost:3000",
    ]


def test_cors_origins_single_value_and_default(monkeypatch):
    assert settings().cors_origins == []
    monkeypatch.setenv("LOANAPI_CORS_ORIGINS", "https://only.example.com")
    assert Settings(_env_file=None).cors_origins == ["https://only.example.com"]  # type: ignore[call-arg]


def test_cors_origins_as_a_list():
    assert settings(cors_origins=["https://x.example.com"]).cors_origins == [
        "https://x.example.com"
    ]


def test_defaults():
    configured = settings()
    assert configured.database_url == "sqlite+aiosqlite:///./loanapi.db"
    assert configured.is_sqlite is True
    assert configured.pbkdf2_rounds >= 600_000
    assert configured.access_token_minutes == 60
    assert configured.password_min_length == 8
    assert configured.login_max_failures == 10
    assert configured.login_window_minutes == 15
    assert configured.secret_key is None


def test_values_from_the_environment(monkeypatch):
    monkeypatch.setenv("LOANAPI_DATABASE_URL", "postgresql+asyncpg://u@db/loans")
    monkeypatch.setenv("LOANAPI_ACCESS_TOKEN_MINUTES", "15")
    monkeypatch.setenv("LOANAPI_LOGIN_MAX_FAILURES", "3")
    monkeypatch.setenv("LOANAPI_PASSWORD_MIN_LENGTH", "12")
    configured = Settings(_env_file=None)  # type: ignore[call-arg]
    assert configured.database_url == "postgresql+asyncpg://u@db/loans"
    assert configured.is_sqlite is False
    assert configured.access_token_minutes == 15
    assert configured.login_max_failures == 3
    assert configured.password_min_length == 12


def test_values_from_a_dotenv_file(tmp_path):
    key = "d" * 48
    (tmp_path / ".env").write_text(
        f"LOANAPI_SECRET_KEY={key}\nLOANAPI_ACCESS_TOKEN_MINUTES=30\n", encoding="utf-8"
    )
    configured = Settings()
    assert configured.secret_key == key
    assert configured.access_token_minutes == 30


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pbkdf2_rounds", 999),
        ("access_token_minutes", 0),
        ("password_min_length", 0),
        ("password_min_length", 129),
        ("login_max_failures", 0),
        ("log_level", "LOUD"),
    ],
)
def test_out_of_range_values_are_refused(field, value):
    with pytest.raises(ValidationError) as info:
        settings(**{field: value})
    assert info.value.errors()[0]["loc"] == (field,)


def test_log_level_is_normalised():
    assert settings(log_level="debug").log_level == "DEBUG"


@pytest.mark.parametrize("share", [0, 257])
def test_an_endpoint_never_holds_more_than_a_quarter_of_the_worker(share):
    """EVENTS.md: a slow endpoint never slows the others; its share of the worker's 1,024
    attempts in flight is capped."""
    with pytest.raises(ValidationError) as info:
        settings(webhook_endpoint_concurrency=share)
    assert info.value.errors()[0]["loc"] == ("webhook_endpoint_concurrency",)
    assert settings(webhook_endpoint_concurrency=256).webhook_endpoint_concurrency == 256
