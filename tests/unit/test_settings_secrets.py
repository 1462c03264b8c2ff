"""Settings for servers reachable beyond loopback: passwords needed, read from files, not shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from jobs.settings import Settings, get_settings, without_password
from lite import credentials


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def test_a_postgres_open_beyond_loopback_needs_a_password() -> None:
    with pytest.raises(ValueError, match="SHOPLAKE_PG_PASSWORD"):
        settings(bind_host="0.0.0.0")
    open_host = settings(bind_host="0.0.0.0", pg_password="pw-Xq7", s3_secret_key="s3-Xq7")
    assert open_host.binds_loopback is False
    assert settings().binds_loopback and settings(bind_host="::1").binds_loopback


def test_passwords_go_into_urls_quoted_and_never_into_what_is_shown() -> None:
    s = settings(pg_password="p@ss/word", redis_password="r:1", redis_url="redis://redis:6379/0")
    assert s.dsn.startswith("postgresql://shoplake:p%40ss%2Fword@127.0.0.1:5434/")
    assert s.redis_url == "redis://:r%3A1@redis:6379/0"
    assert (
        without_password(s.dsn) == "postgresql://shoplake@127.0.0.1:5434/shoplake?connect_timeout=5"
    )
    assert without_password(s.redis_url) == "redis://redis:6379/0"
    assert without_password("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    # a password already in the URL wins over redis_password
    assert (
        settings(redis_password="x", redis_url="redis://:y@h:1/0").redis_url == "redis://:y@h:1/0"
    )


def test_generated_secrets_are_owner_only_kept_and_read_by_get_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "secrets"
    assert credentials.generate(folder) == list(credentials.GENERATED)
    first = {p.name: p.read_text() for p in folder.iterdir()}
    assert all(len(v) >= 32 for v in first.values())
    assert {p.stat().st_mode & 0o777 for p in folder.iterdir()} == {0o600}
    assert credentials.generate(folder) == []  # kept: a restart must not change them
    assert {p.name: p.read_text() for p in folder.iterdir()} == first

    for name in ("SHOPLAKE_PG_PASSWORD", "SHOPLAKE_REDIS_PASSWORD", "SHOPLAKE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SHOPLAKE_SECRETS_DIR", str(folder))
    monkeypatch.chdir(tmp_path)  # no .env
    get_settings.cache_clear()
    try:
        s = get_settings()
    finally:
        get_settings.cache_clear()
    assert s.pg_password is not None
    assert s.pg_password.get_secret_value() == first["shoplake_pg_password"]
    assert s.api_token is not None
    assert s.api_token.get_secret_value() == first["shoplake_api_token"]
    assert first["shoplake_pg_password"] not in repr(s)


@pytest.mark.parametrize("field", ["pg_password", "redis_password", "s3_secret_key", "api_token"])
@pytest.mark.parametrize("value", ["change-me", "CHANGEME", "password", " ", "shoplake-dev-only"])
def test_known_default_secrets_are_refused_beyond_loopback(field: str, value: str) -> None:
    good = {"pg_password": "pg-Xq7", "s3_secret_key": "s3-Xq7"}
    with pytest.raises(ValidationError, match=f"SHOPLAKE_{field.upper()}") as err:
        settings(bind_host="0.0.0.0", **{**good, field: value})
    message = err.value.errors()[0]["msg"]  # what the CLI shows (pydantic's str has the input)
    assert "well-known default" in message
    if value.strip():
        assert value not in message  # the refused secret is not echoed
    # on this host only, the same values are accepted (natively they are generated anyway)
    assert settings(**{**good, field: value}).binds_loopback


def test_the_api_refuses_a_default_token_beyond_loopback() -> None:
    from api.server import serve
    from jobs.errors import UsageError

    with pytest.raises(UsageError, match="SHOPLAKE_API_TOKEN"):
        serve(settings(api_token="change-me"), host="0.0.0.0", port=1)
