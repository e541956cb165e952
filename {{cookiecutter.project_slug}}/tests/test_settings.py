from __future__ import annotations

import pytest

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
