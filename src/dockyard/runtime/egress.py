"""Tenant networks cannot open connections to the server host nor to link-local addresses.

A container reaches the host's own services through any address of the host (its network's
gateway, the host's LAN address ...): such packets arrive from the network's Linux bridge and
go to the INPUT chain. Link-local addresses (169.254.0.0/16: the cloud metadata service that
hands out the machine's credentials) are routed out of the host: the FORWARD chain, where
Docker leaves the DOCKER-USER chain to the operator. Per project network (its bridge is
`br-<first 12 digits of the network id>`) the server keeps two iptables rules:

    -I INPUT -i <bridge> -m conntrack --ctstate NEW -j DROP
    -I DOCKER-USER -i <bridge> -d 169.254.0.0/16 -j DROP

Only new connections *from* the bridge are dropped: the ingress proxy and the health checks on
the host open connections *to* containers (OUTPUT), whose replies are ESTABLISHED and pass.
Containers of one network still talk to each other (bridged, never INPUT), names still resolve
(127.0.0.11 is Docker's resolver inside the container's own namespace), and the internet stays
reachable (FORWARD). Host ports other containers publish stay reachable too (Docker's DNAT
sends them to FORWARD): a published host port is public anyway.

Every rule carries the comment `dockyard-egress:<server id>`, so a server sees only its own
rules: `sync` makes them exactly one pair per live network of this server (adding what is
missing, removing what belongs to a network that is gone), at start-up, when a deployment
ensures its network, when `down` removes it and at shutdown. Rules are kept while the server is
stopped: the containers keep running, and so must their fence. IPv4 only: Dockyard's networks
have no IPv6 (Docker disables it inside their containers).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dockyard.errors import DockyardError
from dockyard.runtime.driver import Driver
from dockyard.runtime.specs import server_labels

COMMENT_PREFIX = "dockyard-egress:"
LINK_LOCAL = "169.254.0.0/16"
INPUT, DOCKER_USER = "INPUT", "DOCKER-USER"
CHAINS = (INPUT, DOCKER_USER)
IPTABLES_WAIT_SECONDS = "10"  # wait for the xtables lock (Docker takes it too)

Runner = Callable[[list[str]], str]  # runs iptables with arguments; its output, or EgressError
log = logging.getLogger("dockyard.server")


class EgressError(DockyardError):
    """The host firewall cannot be set as the server needs (iptables missing or refusing)."""


class IptablesMissing(EgressError):
    """No iptables command on the PATH."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One of our iptables rules: its chain, the bridge it guards and its full specification."""

    chain: str
    bridge: str
    spec: tuple[str, ...]  # what follows `-A <chain>` (or `-I <chain> 1`, `-D <chain>`)


def comment(server: str) -> str:
    return f"{COMMENT_PREFIX}{server}"


def bridge_rules(bridge: str, server: str) -> list[Rule]:
    """The two rules fencing one bridge (see the module's docstring)."""
    tag = ("-m", "comment", "--comment", comment(server))
    return [
        Rule(INPUT, bridge, ("-i", bridge, "-m", "conntrack", "--ctstate", "NEW", *tag,
                             "-j", "DROP")),
        Rule(DOCKER_USER, bridge, ("-i", bridge, "-d", LINK_LOCAL, *tag, "-j", "DROP")),
    ]


def parse_rules(chain: str, listing: str, server: str) -> list[Rule]:
    """The rules of `iptables -S <chain>` that carry this server's comment."""
    found: list[Rule] = []
    for line in listing.splitlines():
        try:
            parts = shlex.split(line)
        except ValueError:
            continue
        if parts[:2] != ["-A", chain] or comment(server) not in parts:
            continue
        spec = tuple(parts[2:])
        bridge = spec[spec.index("-i") + 1] if "-i" in spec[:-1] else ""
        found.append(Rule(chain, bridge, spec))
    return found


def plan(bridges: Mapping[str, str] | list[str], existing: list[Rule],
         server: str) -> tuple[list[Rule], list[Rule]]:
    """(rules to add, rules to delete) so that exactly the bridges' rules exist, once each."""
    wanted = {(r.chain, r.bridge): r for b in sorted(set(_values(bridges)))
              for r in bridge_rules(b, server)}
    seen: set[tuple[str, str]] = set()
    delete: list[Rule] = []
    for rule in existing:
        key = (rule.chain, rule.bridge)
        if key in wanted and key not in seen:
            seen.add(key)
        else:
            delete.append(rule)  # a network that is gone, or a duplicate
    add = [rule for key, rule in wanted.items() if key not in seen]
    return add, delete


def _values(bridges: Mapping[str, str] | list[str]) -> list[str]:
    return list(bridges.values()) if isinstance(bridges, Mapping) else list(bridges)


def run_iptables(args: list[str]) -> str:
    """`iptables -w ARGS`; the output, or EgressError with iptables's own message."""
    binary = shutil.which("iptables")
    if binary is None:
        raise IptablesMissing("iptables is not installed (not on the PATH)",
                              hint="install it (Debian: apt-get install iptables), or start "
                              "with --egress open")
    try:
        done = subprocess.run([binary, "-w", IPTABLES_WAIT_SECONDS, *args], capture_output=True,
                              text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EgressError(f"iptables {' '.join(args)} failed: {exc}") from None
    if done.returncode != 0:
        raise EgressError(f"iptables {' '.join(args)} failed: "
                          f"{(done.stderr or done.stdout).strip()}")
    return done.stdout


def check_host(run: Runner = run_iptables, *, euid: int | None = None) -> None:
    """That this process can fence tenant networks: root, iptables, Docker's DOCKER-USER chain.

    Raises EgressError saying what is missing."""
    if (os.geteuid() if euid is None else euid) != 0:
        raise EgressError("restricting tenants' egress needs root (iptables rules)",
                          hint="run the server as root, or start it with --egress open "
                          "(tenant containers can then reach the host's services)")
    try:
        run(["-S", DOCKER_USER])
    except IptablesMissing:
        raise
    except EgressError as exc:
        raise EgressError(
            f"cannot read the DOCKER-USER chain: {exc.message}",
            hint="the rules need Docker's iptables integration (dockerd's default "
            "`iptables: true`) and the iptables package; or start with --egress open") from None


class EgressGuard:
    """The rules of one server, kept in step with its networks (thread-safe)."""

    def __init__(self, server: str, driver: Driver | None, run: Runner = run_iptables, *,
                 enabled: bool = True) -> None:
        self.server = server
        self.driver = driver
        self.run = run
        self.enabled = enabled and driver is not None
        self._lock = threading.Lock()

    @classmethod
    def off(cls) -> EgressGuard:
        """A guard that does nothing (byoc mode, `--egress open`, in-process tests)."""
        return cls("", None, enabled=False)

    def sync(self) -> dict[str, str]:
        """Exactly the rules of this server's live networks; returns them (name -> bridge)."""
        if not self.enabled or self.driver is None:
            return {}
        with self._lock:
            bridges = self.driver.network_bridges(server_labels(self.server))
            self._apply(list(bridges.values()))
            return bridges

    def protect(self, network: str) -> None:
        """Fence `network` (just ensured) before any container of it starts; EgressError if
        it cannot be (the deployment fails rather than run unfenced)."""
        if not self.enabled:
            return
        if network not in self.sync():
            raise EgressError(f"the network {network} is not on the engine as this server's "
                              "bridge network, so its egress cannot be restricted")

    def forget(self) -> None:
        """After a network is removed: its rules go. Never fails (logged): a stale rule only
        names a bridge that no longer exists, and the next sync removes it."""
        try:
            self.sync()
        except DockyardError as exc:
            log.warning("egress rules not updated: %s", exc.message)

    def clear(self) -> None:
        """Remove every rule of this server (it starts with `--egress open`)."""
        with self._lock:
            self._apply([])

    def _apply(self, bridges: list[str]) -> None:
        existing = [rule for chain in CHAINS
                    for rule in parse_rules(chain, self.run(["-S", chain]), self.server)]
        add, delete = plan(bridges, existing, self.server)
        for rule in delete:
            self.run(["-D", rule.chain, *rule.spec])
        for rule in add:
            self.run(["-I", rule.chain, "1", *rule.spec])
