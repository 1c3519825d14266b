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
            "CONNECTION_TTL_SECONDS": "60",
        }
    )
    assert s == Settings("t", "https://ws.example.com/prod", 1000, 5, 32, 60)


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"TABLE_NAME": " "},
        {"TABLE_NAME": "t", "MAX_DATA_BYTES": "lots"},
        {"TABLE_NAME": "t", "FANOUT_CONCURRENCY": "0"},
    ],
)
def test_bad_environment_is_refused_with_a_clear_error(env: dict[str, str]) -> None:
    # GIVEN a missing table or a non-positive number WHEN settings are read THEN ConfigError
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
