from __future__ import annotations

import pytest
from pydantic import ValidationError

from .conftest import make_settings


def test_comma_lists_are_split() -> None:
    settings = make_settings(api_keys="sk-one, sk-two,", cors_origins="https://a.example")
    assert [key.get_secret_value() for key in settings.api_keys] == ["sk-one", "sk-two"]
    assert settings.cors_origins == ("https://a.example",)


def test_secrets_are_not_printed() -> None:
    settings = make_settings(api_keys="sk-very-secret-value")
    assert "sk-very-secret-value" not in repr(settings)


@pytest.mark.parametrize("api_keys", ["", "change-me", "short"])
def test_production_refuses_default_or_weak_keys(api_keys: str) -> None:
    with pytest.raises(ValidationError, match="ENVIRONMENT=production needs API_KEYS"):
        make_settings(environment="production", api_keys=api_keys)


def test_production_accepts_random_keys() -> None:
    settings = make_settings(environment="production", api_keys="sk-" + "x9" * 16)
    assert settings.auth_enabled


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("LLM_MODEL", "from-env")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = make_settings()
    assert settings.port == 9123
    assert settings.llm_model == "from-env"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"trusted_hosts": "api.*.example.com"}, "TRUSTED_HOSTS"),
        ({"trusted_hosts": "https://api.example.com"}, "TRUSTED_HOSTS"),
        ({"forwarded_allow_ips": "10.0.0.0/8, proxy.internal"}, "FORWARDED_ALLOW_IPS"),
    ],
)
def test_transport_settings_refuse_what_they_cannot_honour(
    values: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        make_settings(**values)


def test_transport_settings_are_comma_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_HOSTS", "API.example.com, *.example.org, [::1]")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8,192.168.1.5")
    settings = make_settings()
    assert settings.trusted_hosts == ("api.example.com", "*.example.org", "[::1]")
    assert settings.forwarded_allow_ips == ("10.0.0.0/8", "192.168.1.5")
