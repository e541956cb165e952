"""What every part of the settings shares: the environment, and comma-separated lists."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator
from pydantic_settings import NoDecode

Environment = Literal["development", "test", "production"]
# A host name, an IPv4 address, or an IPv6 address in brackets (as a Host header has it).
HOST_NAME = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")


def split_commas(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def host_patterns(hosts: tuple[str, ...]) -> tuple[str, ...]:
    """TRUSTED_HOSTS entries, lower-cased: `api.example.com`, `*.example.com` or `*`."""
    for host in hosts:
        name = host.removeprefix("*.")
        if host != "*" and not HOST_NAME.fullmatch(name):
            raise ValueError(
                f"TRUSTED_HOSTS: {host!r} is not a host name, an IP address, "
                "a '*.example.com' pattern or '*'"
            )
    return tuple(host.lower() for host in hosts)


def proxy_addresses(addresses: tuple[str, ...]) -> tuple[str, ...]:
    """FORWARDED_ALLOW_IPS entries: IP addresses, networks (`10.0.0.0/8`) or `*`."""
    for address in addresses:
        if address == "*":
            continue
        try:
            ipaddress.ip_network(address, strict=False)
        except ValueError:
            raise ValueError(
                f"FORWARDED_ALLOW_IPS: {address!r} is not an IP address, a network "
                "such as 10.0.0.0/8, or '*'"
            ) from None
    return addresses


# `A,B, C` in the environment -> ("A", "B", "C"); an empty value -> ().
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(split_commas)]
HostPatterns = Annotated[CommaList, AfterValidator(host_patterns)]
ProxyAddresses = Annotated[CommaList, AfterValidator(proxy_addresses)]


class SettingsPart(BaseModel):
    """Base of each module's settings: all see ENVIRONMENT, to refuse unsafe production values."""

    environment: Environment = "development"
