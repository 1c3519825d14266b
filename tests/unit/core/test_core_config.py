"""Settings from the environment."""

from __future__ import annotations

import pytest
from lambdacast.config import ConfigError, Settings, get_settings


def test_defaults_when_only_the_table_is_set() -> None:
    # GIVEN only TABLE_NAME WHEN settings are read THEN every limit has its documented default
    s = Settings.from_env({"TABLE_NAME": "t"})
    assert s == Settings(table_name="t")
    assert (s.max_data_bytes, s.max_channels, s.fanout_concurrency, s.connection_ttl_seconds) == (
        30720,
        100,
        64,
        7500,
    )
    assert s.management_endpoint is None


def test_every_variable_is_read() -> None:
    # GIVEN every variable set WHEN settings are read THEN each lands in its field (no trailing slash)
    s = Settings.from_env(
        {
            "TABLE_NAME": "t",
            "MANAGEMENT_ENDPOINT": "https://ws.example.com/prod/",
            "MAX_DATA_BYTES": "1000",
            "MAX_CHANNELS_PER_CONNECTION": "5",
            "FANOUT_CONCURRENCY": "32",
            "CONNECTION_TTL_SECONDS": "7300",
            "HISTORY_TTL_SECONDS": "0",
            "USER_PUBLISH_RATE_PER_SECOND": "3",
            "USER_PUBLISH_BURST": "6",
            "POSTED_BYTES_PER_SECOND": "4096",
            "SHARED_RATE_LIMITS": "false",
            "SENDER_IDENTITY": "connection",
            "DIRECT_REPLIES": "false",
        }
    )
    assert s == Settings(
        "t",
        "https://ws.example.com/prod",
        1000,
        5,
        32,
        7300,
        history_ttl_seconds=0,
        user_publish_rate_per_second=3,
        user_publish_burst=6,
        posted_bytes_per_second=4096,
        shared_rate_limits=False,
        sender_identity="connection",
        direct_replies=False,
    )


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"TABLE_NAME": " "},
        {"TABLE_NAME": "t", "MAX_DATA_BYTES": "lots"},
        {"TABLE_NAME": "t", "FANOUT_CONCURRENCY": "0"},
        {"TABLE_NAME": "t", "SENDER_IDENTITY": "everything"},
        {"TABLE_NAME": "t", "DIRECT_REPLIES": "maybe"},
        {"TABLE_NAME": "t", "HISTORY_TTL_SECONDS": "-1"},
    ],
)
def test_bad_environment_is_refused_with_a_clear_error(env: dict[str, str]) -> None:
    # GIVEN a missing table, a bad number or an unknown choice WHEN settings are read THEN ConfigError
    with pytest.raises(ConfigError):
        Settings.from_env(env)


def test_settings_are_read_once_and_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN settings read once WHEN the environment changes THEN the same frozen object is returned
    get_settings.cache_clear()
    first = get_settings()
    monkeypatch.setenv("TABLE_NAME", "changed")
    assert get_settings() is first
    with pytest.raises(AttributeError):
        first.table_name = "x"  # type: ignore[misc]
    get_settings.cache_clear()


def test_a_connection_ttl_shorter_than_api_gateways_two_hours_is_refused() -> None:
    # GIVEN a connection TTL of one hour (API Gateway keeps a connection open for up to 2 hours, so
    # DynamoDB could delete the rows of a connection that is still open: it would stop receiving)
    env = {"TABLE_NAME": "t", "CONNECTION_TTL_SECONDS": "3600"}
    # WHEN settings are read THEN the function refuses to start, naming the minimum
    with pytest.raises(ConfigError, match="at least 7200"):
        Settings.from_env(env)


def test_a_connection_ttl_of_two_hours_is_accepted() -> None:
    # GIVEN exactly API Gateway's maximum connection duration WHEN read THEN it is kept
    assert (
        Settings.from_env({"TABLE_NAME": "t", "CONNECTION_TTL_SECONDS": "7200"}).connection_ttl_seconds
        == 7200
    )
