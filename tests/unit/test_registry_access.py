"""Which registries a tenant may make the engine contact (`server.registry_access`)."""

from __future__ import annotations

import pytest

from dockyard.server.registry_access import (
    RegistryNotAllowed,
    check_login_registry,
    refused_registry,
)

PUBLIC = {"ghcr.io": ["140.82.112.33"], "registry-1.docker.io": ["54.236.113.205"],
          "rebind.example": ["93.184.216.34", "10.0.0.7"], "inside.example": ["192.168.1.4"],
          "v6.example": ["2606:4700::1111"], "v6local.example": ["fe80::1%eth0"]}


def resolve(host: str) -> list[str]:
    return PUBLIC.get(host, [])


@pytest.mark.parametrize("registry", ["ghcr.io", "docker.io", "ghcr.io:443", "v6.example",
                                      "nowhere.example:5000", "8.8.8.8:5000"])
def test_public_or_unresolvable_registries_are_allowed(registry: str) -> None:
    assert refused_registry(registry, patterns=(), resolve=resolve) is None


@pytest.mark.parametrize("registry", ["127.0.0.1:5000", "localhost:5000", "10.1.2.3",
                                      "169.254.169.254", "100.64.0.1:80", "[::1]:5000",
                                      "0.0.0.0:5000", "inside.example", "rebind.example:5000",
                                      "v6local.example"])
def test_private_and_local_registries_are_refused(registry: str) -> None:
    resolver = {**PUBLIC, "localhost": ["127.0.0.1"]}
    why = refused_registry(registry, patterns=(), resolve=lambda h: resolver.get(h, []))
    assert why is not None and registry in why


def test_the_operator_allows_by_pattern() -> None:
    assert refused_registry("127.0.0.1:5000", patterns=("127.0.0.1:*",), resolve=resolve) is None
    assert refused_registry("127.0.0.2:5000", patterns=("127.0.0.1:*",),
                            resolve=resolve) is not None


def test_a_login_to_a_refused_registry_raises_with_a_hint() -> None:
    with pytest.raises(RegistryNotAllowed) as raised:
        check_login_registry("169.254.169.254", patterns=())
    assert "--allow-registry" in (raised.value.hint or "")
