"""Where a config's value comes from on the command line (pure apart from reading input)."""

from __future__ import annotations

import secrets

RANDOM_BYTES = 32


def random_value() -> str:
    """A strong random value: 32 bytes from the OS's CSPRNG, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(RANDOM_BYTES)


def split_assignment(text: str) -> tuple[str, str | None]:
    """`NAME=VALUE` → (NAME, VALUE); `NAME` → (NAME, None)."""
    name, sep, value = text.partition("=")
    return name, (value if sep else None)
