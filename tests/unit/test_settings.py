"""Settings come from environment variables, validated once, with clear messages."""

from __future__ import annotations

import pytest

from sieve.settings import Settings


def test_unset_variables_give_the_documented_defaults():
    settings = Settings.from_env({})
    assert settings.redis_url is None and settings.queue_name == "sieve" and settings.job_timeout == 600
    assert settings.max_content_length == 64 * 1024 * 1024 and settings.first_ranking_wait == 10.0
    assert settings.max_pools_per_tenant == 1000 and settings.labelstudio_sync_seconds == 300
    # A million items of a 384-wide sentence embedding fit out of the box.
    assert settings.max_pool_values >= 1_000_000 * 384
    assert settings.shard_rows == 524_288


def test_variables_are_parsed_into_their_types():
    settings = Settings.from_env(
        {
            "REDIS_URL": "rediss://:pw@host:6380/2",
            "SIEVE_JOB_TIMEOUT": "30",
            "SIEVE_FIRST_RANKING_WAIT": "2.5",
            "SIEVE_WORKER_CACHE_MB": "16",
            "SIEVE_MAX_POOL_VALUES": "2000000000",
            "SIEVE_SHARD_ROWS": "20000",
        }
    )
    assert settings.max_pool_values == 2_000_000_000
    assert settings.redis_url == "rediss://:pw@host:6380/2"
    assert settings.job_timeout == 30 and settings.first_ranking_wait == 2.5
    assert settings.worker_cache_bytes == 16 * 1024 * 1024
    assert settings.shard_rows == 20_000


@pytest.mark.parametrize(
    "env, message",
    [
        ({"SIEVE_JOB_TIMEOUT": "soon"}, "SIEVE_JOB_TIMEOUT must be an integer"),
        ({"SIEVE_JOB_TIMEOUT": "0"}, "SIEVE_JOB_TIMEOUT must be at least 1"),
        ({"SIEVE_FIRST_RANKING_WAIT": "nan"}, "SIEVE_FIRST_RANKING_WAIT must be at least 0"),
        ({"SIEVE_MAX_BODY_BYTES": "10"}, "SIEVE_MAX_BODY_BYTES must be at least 1024"),
        ({"SIEVE_MAX_POOLS_PER_TENANT": "0"}, "SIEVE_MAX_POOLS_PER_TENANT must be at least 1"),
        ({"SIEVE_MAX_POOLS_PER_TENANT": "many"}, "SIEVE_MAX_POOLS_PER_TENANT must be an integer"),
        ({"SIEVE_MAX_POOL_VALUES": "0"}, "SIEVE_MAX_POOL_VALUES must be at least 1"),
        ({"SIEVE_MAX_POOL_VALUES": str(10**12)}, "SIEVE_MAX_POOL_VALUES must be at most 20000000000"),
        ({"SIEVE_LABELSTUDIO_SYNC_SECONDS": "0"}, "SIEVE_LABELSTUDIO_SYNC_SECONDS must be at least 1"),
        ({"SIEVE_LABELSTUDIO_SYNC_SECONDS": "often"}, "SIEVE_LABELSTUDIO_SYNC_SECONDS must be an integer"),
        ({"SIEVE_SHARD_ROWS": "0"}, "SIEVE_SHARD_ROWS must be at least 1"),
        ({"SIEVE_SHARD_ROWS": "1e6"}, "SIEVE_SHARD_ROWS must be an integer"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_a_short_or_missing_secret_key_is_refused_when_one_is_needed():
    with pytest.raises(ValueError, match="SIEVE_SECRET_KEY"):
        Settings.from_env({"SIEVE_SECRET_KEY": "short"}).require_secret_key()
    assert Settings.from_env({"SIEVE_SECRET_KEY": "k" * 16}).require_secret_key() == b"k" * 16


def test_label_studio_origins_are_normalised_bare_origins():
    raw = "http://localhost:8080/, HTTPS://LS.Example.com:443,http://[::1]:80,,http://10.0.0.3"
    settings = Settings.from_env({"SIEVE_LABELSTUDIO_ORIGINS": raw})
    assert settings.labelstudio_origins == (
        "http://localhost:8080",
        "https://ls.example.com",
        "http://[::1]",
        "http://10.0.0.3",
    )
    assert Settings.from_env({}).labelstudio_origins == ()


@pytest.mark.parametrize(
    "entry, message",
    [
        ("http://ls/api", "no path"),
        ("http://ls?x=1", "no path, query"),
        ("http://ls#f", "fragment"),
        ("http://user:pw@ls", "user info"),
        ("ftp://ls", "http:// or https://"),
        ("ls:8080", "http:// or https://"),
        ("http://169.254.169.254", "link-local"),
        ("http://[fe80::1]:8080", "link-local"),
        ("http://[::ffff:169.254.169.254]", "link-local"),
        ("http://0.0.0.0", "unspecified"),
        ("http://ls:99999", "an origin such as"),
        ("http://l s", "an origin such as"),
    ],
)
def test_a_label_studio_origin_that_is_more_than_an_origin_is_refused_at_start(entry, message):
    with pytest.raises(ValueError, match=f"SIEVE_LABELSTUDIO_ORIGINS: .*{message}"):
        Settings.from_env({"SIEVE_LABELSTUDIO_ORIGINS": f"http://ok.example.com,{entry}"})


def test_cors_origins_are_off_by_default_and_normalised_as_browsers_send_them():
    assert Settings.from_env({}).cors_origins == ()
    raw = "https://Label.Example.com:443/, http://localhost:5173,,http://[::1]:8080"
    assert Settings.from_env({"SIEVE_CORS_ORIGINS": raw}).cors_origins == (
        "https://label.example.com",
        "http://localhost:5173",
        "http://[::1]:8080",
    )
    assert Settings.from_env({"SIEVE_CORS_ORIGINS": " * "}).cors_origins == ("*",)


@pytest.mark.parametrize(
    "raw, message",
    [
        ("https://app.example.com/labels", "no path"),
        ("app.example.com", "http:// or https://"),
        ("https://user@app.example.com", "user info"),
        ("null", "http:// or https://"),
        ("https://app.example.com,*", "stands alone"),
        ("https://*.example.com", "an origin such as"),
    ],
)
def test_a_cors_origin_that_is_more_than_an_origin_is_refused_at_start(raw, message):
    with pytest.raises(ValueError, match=f"SIEVE_CORS_ORIGINS: .*{message}"):
        Settings.from_env({"SIEVE_CORS_ORIGINS": raw})
