"""Settings from the environment (function/postergenre/config.py): parsed by type, bad values refused."""

from __future__ import annotations

import pytest

from postergenre.config import ConfigError, Settings


def test_floats_stay_floats(monkeypatch):
    monkeypatch.setenv("DECODE_CPU_SECONDS", "0.5")
    monkeypatch.setenv("BUSY_WAIT_SECONDS", "1.5")
    monkeypatch.setenv("READ_TIMEOUT_SECONDS", "2.5")
    settings = Settings.from_env()
    assert (settings.decode_cpu_seconds, settings.busy_wait_s, settings.read_timeout_s) == (0.5, 1.5, 2.5)


def test_unset_or_empty_takes_the_default(monkeypatch):
    monkeypatch.delenv("MAX_BATCH", raising=False)
    monkeypatch.setenv("DECODE_CPU_SECONDS", " ")
    settings = Settings.from_env()
    assert (settings.max_batch, settings.decode_cpu_seconds) == (16, 3.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [("THREADS", "many"), ("MAX_BATCH", "2.5"), ("MAX_UPLOAD_BYTES", str(64 * 1024 * 1024)), ("DECODE_CPU_SECONDS", "nan"),
     ("RETRY_AFTER_SECONDS", "0"), ("MEMORY_MB", "-1"), ("WARM_BASE_MB", "1e9")],
)
def test_a_bad_value_is_an_error_that_names_it(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"^{name}='{value}' is not a (whole )?number from"):
        Settings.from_env()


def test_the_function_refuses_to_start_with_a_bad_value(make_app):
    with pytest.raises(ConfigError, match="MAX_BATCH"):
        make_app(MAX_BATCH="sixteen")
