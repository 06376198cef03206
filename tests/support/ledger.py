"""Alice's `alpha-ledger` project, deployed in-process with configs, a secret and a build:
the project tests search for in whatever another account is told."""

from __future__ import annotations

from typing import Any

from tests.support.server import IMAGE, Server, digest_of, make_tar

# Alice's project: every name in it is distinctive, so that finding "ledger" anywhere in what
# Bob is told is a leak.
LEDGER = "alpha-ledger"
LEDGER_SECRETS = {"ledger_cert": {"external": True}}
LEDGER_CONTEXT = make_tar({"Dockerfile": b"FROM dockyard/busybox:1\n# ledger\n"})
LEDGER_CONFIGS = {"LEDGER_KEY": "ledger-key-value-0a1b", "ledger_cert": "ledger-cert-value-2c3d"}


def ledger_services() -> dict[str, Any]:
    return {
        "ledgerweb": {"image": IMAGE, "ports": [{"target": 8080}],
                      "healthcheck": {"test": ["CMD", "true"]},
                      "environment": {"LEDGER_KEY": None}},
        "ledgerdb": {"image": IMAGE, "secrets": ["ledger_cert"]},
        "ledgerapp": {"build": {"context": "."}},
    }


def deploy_ledger(server: Server) -> str:
    """Alice's deployed project, with configs and an uploaded build context."""
    for name, value in LEDGER_CONFIGS.items():
        server.set_config(LEDGER, name, value)
    upload = server.call("PUT", f"/v1/contexts/{digest_of(LEDGER_CONTEXT)}",
                         content=LEDGER_CONTEXT)
    assert upload.status_code == 201, upload.text
    deployment, status = server.up(LEDGER, ledger_services(), secrets=LEDGER_SECRETS,
                                   builds={"ledgerapp": {"digest": digest_of(LEDGER_CONTEXT)}})
    assert status == "succeeded"
    return deployment
