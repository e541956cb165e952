from __future__ import annotations

import pytest
from pydantic import ValidationError

from .conftest import make_settings


def test_comma_lists_are_split() -> None:
    settings = make_settings(cors_origins="https://a.example, https://b.example,")
    assert settings.cors_origins == ("https://a.example", "https://b.example")


def test_secrets_are_not_printed() -> None:
    settings = make_settings(llm_api_key="sk-very-secret-value")
    assert "sk-very-secret-value" not in repr(settings)
    assert "sk-very-secret-value" not in str(settings.model_dump())


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
