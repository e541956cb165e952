"""What every part of the settings shares: the environment, and comma-separated lists."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator
from pydantic_settings import NoDecode

Environment = Literal["development", "test", "production"]


def split_commas(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


# `A,B, C` in the environment -> ("A", "B", "C"); an empty value -> ().
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(split_commas)]


class SettingsPart(BaseModel):
    """Base of each module's settings: all see ENVIRONMENT, to refuse unsafe production values."""

    environment: Environment = "development"
