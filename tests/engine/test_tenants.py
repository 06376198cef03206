"""Tenants: two accounts on one playground server, and nothing of one reaches the other.

One real `dockyard server --mode playground` runs for the whole module, started here as its
operator would start it (a free API port, any free ingress ports on loopback, a data directory
of its own). The operator creates the accounts `alice` and `bob` with `dockyard server accounts
add`; each user has a DOCKYARD_HOME of their own, logs in with the printed token on standard
input and then works only through `--server URL`, so no local server may ever start for them.
Every command runs as a subprocess of the real CLI with a clean environment (no inherited
DOCKYARD_* or COMPOSE_* variable), and its output is kept in a transcript that the last test
searches for the config value.

What is held:

- each user is their own account (`whoami`), in playground mode;
- an account sees nothing of another's project: `ps`, `logs`, `deployments`, configs and the
  API answer exactly as for a project that does not exist, and `down` of another's project
  touches none of its containers;
- from inside a container, another account's private service cannot be reached by any name
  (its service name, its playground name `<user>-<service>`, `<service>.<project>.internal`)
  nor by its container's IP address, while the account's own database answers (the control);
- two projects of one account cannot reach each other either, and two accounts may use the
  same project name without meeting. The playground allows one project per account, so this
  server runs with `--max-projects 2` (the other playground limits stay); one server keeps the
  module fast, and the project limit itself is still checked (a third project is refused);
- a project over the playground limits (5 services, at most 4) is refused with exit code 3 and
  `limit-exceeded`, and nothing of it starts;
- a config value (alice's API_KEY, set through standard input) is in alice's container and
  nowhere else: not in any CLI output, the API's answers, the server's log, any file of its data
  directory (the SQLite store and its WAL included), the containers' labels, nor in anything
  bob sees. The web prints it at start: the engine's log has it, `dockyard logs` must not.

Cleanup: the server is stopped (SIGTERM, then SIGKILL), then every container and network that
carries its server id (`dockyard.server=<data>/server-id`) is removed: nothing else on the
shared engine is touched.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.files import file_contents
from tests.support.deployments import (
    COMPLETED,
    Result,
    docker,
    eventually,
    free_port,
    labelled,
)
from tests.support.engine import engine_ready
from tests.support.tenants import (
    ZONE,
    Playground,
    User,
    answer,
    inspect_all,
    ip_of,
    probe,
    project_containers,
    remove_server_objects,
    snapshot,
    start_server,
    stop_server,
    the_container,
)

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
]

@pytest.fixture(scope="module")
def playground(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Playground]:
    """The server, alice and bob logged in, and their projects deployed:

    - alice: `app` (tenant-alice: db + web using the config API_KEY) and `vault`;
    - bob: `app` (tenant-bob: db + web) and `vault`, under the same name as alice's `vault`.
    """
    root = tmp_path_factory.mktemp("tenants")
    data, log, port = root / "server", root / "server.log", free_port()
    process = start_server(root, port, data, log)
    url = f"http://127.0.0.1:{port}"
    server_id = ""
    try:
        def healthy() -> bool:
            assert process.poll() is None, (
                f"the server exited {process.returncode}:\n{log.read_text(errors='replace')}")
            try:
                return httpx.get(url + "/v1/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        eventually(healthy, "the playground server to answer /v1/health")
        server_id = (data / "server-id").read_text().strip()
        transcript: list[str] = []
        run = uuid.uuid4().hex[:6]
        pg = Playground(root=root, url=url, data=data, log=log, server_id=server_id,
                        operator=User("operator", root / "operator", url, transcript),
                        alice=User("alice", root / "alice", url, transcript),
                        bob=User("bob", root / "bob", url, transcript), run=run,
                        transcript=transcript, canary=f"LEAK-canary-alice-{run}")
        pg.projects = {"alice": f"tn-{run}-alice", "bob": f"tn-{run}-bob",
                       "vault": f"tn-{run}-vault"}

        # The operator makes the accounts; each user logs in with the token on stdin.
        for user in (pg.alice, pg.bob):
            added = pg.operator.cli("server", "accounts", "add", user.name, "--data", str(data))
            assert added.code == 0, str(added)
            user.token = added.out.strip().splitlines()[-1]
            login = user.cli("login", "--server", url, stdin=user.token + "\n")
            assert login.code == 0, str(login)

        # alice's config, from standard input, before the deployment that needs it.
        stored = pg.alice.remote("config", "set", "API_KEY", "-p", pg.projects["alice"],
                                 stdin=pg.canary)
        assert stored.code == 0, str(stored)

        pg.ups["alice"] = pg.alice.up(pg.project_dir("tenant-alice"), pg.projects["alice"])
        pg.ups["bob"] = pg.bob.up(pg.project_dir("tenant-bob"), pg.projects["bob"])
        pg.ups["alice-vault"] = pg.alice.up(pg.project_dir("tenant-vault", OWNER="alice"),
                                            pg.projects["vault"])
        pg.ups["bob-vault"] = pg.bob.up(pg.project_dir("tenant-vault", OWNER="bob"),
                                        pg.projects["vault"])
        yield pg
    finally:
        stop_server(process)
        if not server_id:
            try:
                server_id = (data / "server-id").read_text().strip()
            except OSError:
                server_id = ""
        if server_id:
            remove_server_objects(server_id, ("alice", "bob"))


def deployed(pg: Playground, *which: str) -> None:
    """The deployments this test relies on succeeded (else the test says why, with the log)."""
    for key in which:
        result = pg.ups[key]
        assert result.code == 0, f"{key}: {result}\n--- server log\n{pg.server_log()[-4000:]}"


def not_found(result: Result) -> bool:
    """A refusal that says the thing does not exist (for this account)."""
    text = (result.err + result.out).lower()
    return result.code != 0 and any(words in text for words in (
        "not found", "no deployment", "does not exist", "no such"))


def same_answer(one: Result, one_name: str, other: Result, other_name: str) -> bool:
    """Whether two results are the same but for the project's name in them."""
    return (one.code, one.out.replace(one_name, "P"), one.err.replace(one_name, "P")) == (
        other.code, other.out.replace(other_name, "P"), other.err.replace(other_name, "P"))


# -- 1. accounts -------------------------------------------------------------------------------
def test_each_user_is_their_own_account_in_playground_mode(playground: Playground) -> None:
    pg = playground
    for user in (pg.alice, pg.bob):
        me = user.remote("whoami", "--json")
        assert me.code == 0, str(me)
        assert json.loads(me.out) == {"account": user.name, "server": pg.url,
                                      "mode": "playground", "zone": ZONE}, str(me)
        # Everything went through --server: no local server was started for this user.
        assert not (user.home / "data" / "server" / "server.json").exists()
    listed = pg.operator.cli("server", "accounts", "ls", "--data", str(pg.data))
    assert listed.code == 0, str(listed)
    assert {line.split()[0] for line in listed.out.splitlines()[1:]} >= {"alice", "bob"}

    # A wrong token is refused at login, and nothing is saved.
    stranger = User("stranger", pg.root / "stranger", pg.url, pg.transcript)
    refused = stranger.cli("login", "--server", pg.url, stdin="not-a-token\n")
    assert refused.code != 0, str(refused)
    assert not (stranger.home / "config" / "credentials.json").exists()


# -- 2. both deploy ----------------------------------------------------------------------------
def test_both_accounts_deploy_with_playground_names(playground: Playground) -> None:
    pg = playground
    deployed(pg, "alice", "bob")
    for user in (pg.alice, pg.bob):
        project = pg.projects[user.name]
        rows = user.ps(project)
        assert set(rows) == {"db", "web"}, rows
        assert all(row["state"] == COMPLETED for row in rows.values()), rows
        assert f"{user.name}-web--8080.{ZONE}" in rows["web"]["endpoint"], rows["web"]
        assert rows["db"]["endpoint"] == "", rows["db"]
        found = project_containers(user.name, project)
        assert {c["Config"]["Labels"]["dockyard.service"] for c in found} == {"db", "web"}
        assert all(c["Config"]["Labels"]["dockyard.server"] == pg.server_id for c in found)
        for container in found:  # one network: the account's project's own
            assert set(container["NetworkSettings"]["Networks"]) == set(
                labelled("network", project, user.name)), container["NetworkSettings"]
            assert len(container["NetworkSettings"]["Networks"]) == 1


# -- 3. an account sees nothing of another -----------------------------------------------------
def test_an_account_sees_nothing_of_another(playground: Playground) -> None:
    pg = playground
    deployed(pg, "alice", "bob")
    alice, bob = pg.alice, pg.bob
    theirs, absent = pg.projects["bob"], f"tn-{pg.run}-absent"

    # ps of bob's project, for alice, is what ps of a project that exists nowhere is.
    seen = alice.remote("compose", "ps", "--json", "-p", theirs)
    missing = alice.remote("compose", "ps", "--json", "-p", absent)
    assert same_answer(seen, theirs, missing, absent), f"{seen}\n{missing}"
    if seen.code == 0:
        assert json.loads(seen.out) == [], str(seen)
    else:
        assert not_found(seen), str(seen)
    assert "db-of-bob" not in seen.out + seen.err

    # logs of bob's project fail as not found, as for a missing project.
    for args in (("logs",), ("logs", "--type", "run"), ("compose", "logs")):
        logs = alice.remote(*args, "-p", theirs)
        assert not_found(logs), str(logs)
        assert "db-of-bob" not in logs.out + logs.err, str(logs)
        absent_logs = alice.remote(*args, "-p", absent)
        assert same_answer(logs, theirs, absent_logs, absent), f"{logs}\n{absent_logs}"

    # deployments: each lists its own, and only its own.
    mine = {user.name: user.deployments() for user in (alice, bob)}
    for user, other in ((alice, bob), (bob, alice)):
        projects = {d["project"] for d in mine[user.name]}
        assert projects == {pg.projects[user.name], pg.projects["vault"]}, mine[user.name]
        assert not {d["id"] for d in mine[user.name]} & {d["id"] for d in mine[other.name]}
        assert pg.ups[user.name].deployment in {d["id"] for d in mine[user.name]}
    alice_only = alice.remote("deployments", "-p", theirs, "--json")
    assert alice_only.code == 0 and json.loads(alice_only.out) == [], str(alice_only)

    # The API: another's deployment is a 404 like a missing one; projects are one's own.
    bobs_deployment = pg.ups["bob"].deployment
    assert alice.api(f"/v1/deployments/{bobs_deployment}").status_code == 404
    assert alice.api("/v1/deployments/000000000000").status_code == 404
    assert alice.api(f"/v1/deployments/{pg.ups['alice'].deployment}").status_code == 200
    foreign = alice.api(f"/v1/projects/{theirs}/services")
    nowhere = alice.api(f"/v1/projects/{absent}/services")
    assert foreign.status_code == nowhere.status_code == 404
    assert foreign.text.replace(theirs, "X") == nowhere.text.replace(absent, "X")
    assert {p["name"] for p in alice.api("/v1/projects").json()} == \
        {pg.projects["alice"], pg.projects["vault"]}
    assert {p["name"] for p in bob.api("/v1/projects").json()} == \
        {pg.projects["bob"], pg.projects["vault"]}
    for account, user in (("bob", alice), ("alice", bob)):
        listed = user.api("/v1/deployments", project=pg.projects[account]).json()
        assert listed == [], listed

    # alice's config is not bob's: bob's project of that name has no configs.
    bob_configs = bob.remote("config", "ls", "--json", "-p", pg.projects["alice"])
    assert bob_configs.code == 0 and json.loads(bob_configs.out) == [], str(bob_configs)
    alice_configs = alice.remote("config", "ls", "--json", "-p", pg.projects["alice"])
    assert alice_configs.code == 0, str(alice_configs)
    assert [c["name"] for c in json.loads(alice_configs.out)] == ["API_KEY"], str(alice_configs)

    # bob taking alice's project down touches none of her containers.
    before = snapshot(project_containers("alice", pg.projects["alice"]))
    assert before and all(running for _, running in before.values()), before
    down = bob.remote("compose", "down", "--json", "-p", pg.projects["alice"])
    assert down.code == 0 or not_found(down), str(down)
    assert snapshot(project_containers("alice", pg.projects["alice"])) == before
    rows = alice.ps(pg.projects["alice"])
    assert all(row["state"] == COMPLETED for row in rows.values()), rows
    assert [d["action"] for d in alice.deployments()
            if d["project"] == pg.projects["alice"]] == ["up"]


# -- 4. networks between accounts --------------------------------------------------------------
def test_another_accounts_private_service_is_unreachable(playground: Playground) -> None:
    pg = playground
    deployed(pg, "alice", "bob")
    alice_project, bob_project = pg.projects["alice"], pg.projects["bob"]
    alice_web = the_container("alice", alice_project, "web")
    alice_db = the_container("alice", alice_project, "db")
    bob_web = the_container("bob", bob_project, "web")
    bob_db = the_container("bob", bob_project, "db")

    # The controls: each web reaches its own db by every private name and by its IP.
    for web, db, user, project in ((alice_web, alice_db, "alice", alice_project),
                                   (bob_web, bob_db, "bob", bob_project)):
        for host in ("db", f"db.{project}.internal", f"{user}-db", ip_of(db)):
            assert answer(web, host) == f"db-of-{user}", (user, host, probe(web, host))

    # alice's web reaches nothing of bob's db: no name resolves to it, its address is closed.
    for host in ("bob-db", f"db.{bob_project}.internal", ip_of(bob_db)):
        result = probe(alice_web, host)
        assert result.returncode != 0 and "db-of-bob" not in result.stdout, (host, result)
    # The plain service name is alice's own db, never bob's.
    assert answer(alice_web, "db") == "db-of-alice"
    # Nor the other way round.
    for host in ("alice-db", f"db.{alice_project}.internal", ip_of(alice_db)):
        result = probe(bob_web, host)
        assert result.returncode != 0 and "db-of-alice" not in result.stdout, (host, result)


# -- 5. networks between projects --------------------------------------------------------------
def test_projects_are_apart_within_an_account_and_across_same_names(
        playground: Playground) -> None:
    pg = playground
    deployed(pg, "alice", "bob", "alice-vault", "bob-vault")
    vault = pg.projects["vault"]
    alice_web = the_container("alice", pg.projects["alice"], "web")
    alice_vault = the_container("alice", vault, "vault")
    bob_vault = the_container("bob", vault, "vault")

    # One name, two accounts: two projects, each with its own network and containers.
    assert alice_vault["Id"] != bob_vault["Id"]
    alice_net, bob_net = labelled("network", vault, "alice"), labelled("network", vault, "bob")
    assert len(alice_net) == len(bob_net) == 1 and alice_net != bob_net
    assert set(alice_vault["NetworkSettings"]["Networks"]) == set(alice_net)
    assert set(bob_vault["NetworkSettings"]["Networks"]) == set(bob_net)
    for user, container in (("alice", alice_vault), ("bob", bob_vault)):
        rows = getattr(pg, user).ps(vault)
        assert set(rows) == {"vault"} and rows["vault"]["state"] == COMPLETED, rows
        for host in ("vault", f"vault.{vault}.internal", f"{user}-vault"):
            assert answer(container, host) == f"vault-of-{user}", (user, host)

    # alice's two projects cannot reach each other: not by name, not by address.
    for host in ("vault", "alice-vault", f"vault.{vault}.internal", ip_of(alice_vault)):
        result = probe(alice_web, host)
        assert result.returncode != 0 and "vault-of" not in result.stdout, (host, result)
    alice_db = the_container("alice", pg.projects["alice"], "db")
    for host in ("db", "alice-db", f"db.{pg.projects['alice']}.internal", ip_of(alice_db)):
        result = probe(alice_vault, host)
        assert result.returncode != 0 and "db-of" not in result.stdout, (host, result)
    # The two vaults of the same name do not meet either.
    result = probe(alice_vault, ip_of(bob_vault))
    assert result.returncode != 0 and "vault-of-bob" not in result.stdout, result


# -- 6. limits -----------------------------------------------------------------------------------
def test_a_project_over_the_limits_is_refused_and_nothing_starts(
        playground: Playground) -> None:
    pg = playground
    five = f"tn-{pg.run}-five"
    refused = pg.alice.up(pg.project_dir("tenant-five"), five)
    assert refused.code == 3, str(refused)
    assert "limit-exceeded" in refused.err, str(refused)
    assert "5 services" in refused.err, str(refused)
    assert project_containers("alice", five) == []
    assert labelled("network", five, "alice") == []
    assert pg.alice.ps(five) == {}
    assert all(d["status"] not in ("running", "succeeded", "failed")
               for d in pg.alice.deployments() if d["project"] == five)

    # The project limit (2 on this server): alice has two, a third is refused.
    deployed(pg, "alice", "alice-vault")
    third = f"tn-{pg.run}-third"
    over = pg.alice.up(pg.project_dir("tenant-vault", OWNER="alice"), third)
    assert over.code == 3, str(over)
    assert "limit-exceeded" in over.err and "project" in over.err, str(over)
    assert project_containers("alice", third) == []


# -- 7. configs ---------------------------------------------------------------------------------
def test_a_config_value_is_in_its_container_and_nowhere_else(playground: Playground) -> None:
    pg = playground
    deployed(pg, "alice", "bob")
    alice, bob, canary = pg.alice, pg.bob, pg.canary
    project = pg.projects["alice"]
    web = the_container("alice", project, "web")

    # The controls: the value is in alice's web, which printed it (the engine's log has it).
    assert docker("exec", str(web["Id"]), "sh", "-c", 'echo "$API_KEY"',
                  check=False).stdout.strip() == canary
    engine_log = docker("logs", str(web["Id"]), check=False)
    assert f"API_KEY={canary}" in engine_log.stdout + engine_log.stderr, engine_log

    # Everything alice and bob can look at, through the CLI and the API.
    logs = alice.remote("logs", "-p", project)
    assert logs.code == 0, str(logs)
    assert "web starting with API_KEY=" in logs.out, str(logs)  # the line is there, redacted
    for user in (alice, bob):
        user.remote("whoami")
        user.remote("whoami", "--json")
        user.remote("deployments", "--all")
        user.remote("deployments", "--all", "--json")
        user.remote("config", "ls", "-p", project)
        user.remote("config", "ls", "--json", "-p", project)
        user.remote("compose", "ps", "-p", project)
        user.remote("compose", "ps", "--long", "--json", "-p", project)
        user.remote("compose", "ls")
        user.remote("compose", "ls", "--json")
        user.remote("logs", "-p", project, "--json")
        user.remote("logs", "-p", project, "--type", "all")
        user.api("/v1/projects")
        user.api(f"/v1/projects/{project}/configs")
        user.api(f"/v1/projects/{project}/services")
        user.api("/v1/deployments")
        user.api(f"/v1/deployments/{pg.ups['alice'].deployment}")

    leaks = [text.split("\n", 1)[0] for text in pg.transcript if canary in text]
    assert not leaks, f"the config value is in the output of: {leaks}"

    # The server's own log, and every file of its data directory (store, WAL, proxy files).
    assert canary not in pg.server_log(), "the config value is in the server's log"
    raw = canary.encode()
    in_files = [str(path.relative_to(pg.data)) for path, content in file_contents(pg.data)
                if raw in content]
    assert not in_files, f"the config value is in the server's files: {in_files}"
    assert (pg.data / "dockyard.db").is_file()

    # On the engine: in alice's web's environment only; never in a label or bob's containers.
    mine = inspect_all(f"label=dockyard.server={pg.server_id}")
    assert web["Id"] in {c["Id"] for c in mine}
    for container in mine:
        config = dict(container["Config"])
        env = config.pop("Env", None) or []
        rest = json.dumps({**container, "Config": config})
        assert canary not in rest, f"the config value is in {container['Name']}'s settings"
        expected = container["Id"] == web["Id"]
        assert (f"API_KEY={canary}" in env) == expected, (container["Name"], expected)
