"""Deployment ids: 12 lowercase base-36 characters, as Defang's etags look.

See docs/architecture.md, Concepts.
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
LENGTH = 12
_ID = re.compile(rf"^[0-9a-z]{{{LENGTH}}}$")


def new_deployment_id() -> str:
    """A random id (62 bits of entropy: collisions are not a practical concern)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def is_deployment_id(text: str) -> bool:
    return bool(_ID.match(text))
