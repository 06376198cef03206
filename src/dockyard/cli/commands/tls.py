"""`dockyard ca`: where the server's local CA is, and how to trust it."""

from __future__ import annotations

from typing import Any

from dockyard.cli.render import write_stdout
from dockyard.client.api import Client
from dockyard.client.trust import save_ca
from dockyard.home import config_dir


def run_ca(client_factory: Any, *, pem: bool) -> None:
    from dockyard.ingress.ca import trust_instructions

    client: Client = client_factory()
    with client:
        path = save_ca(client, config_dir() / "ca")
    if pem:
        write_stdout(path.read_text().rstrip("\n"))
        return
    write_stdout(f"The server's HTTPS certificates for local names come from its own CA, "
                 f"saved here:\n  {path}\n\n{trust_instructions(path).rstrip()}")
