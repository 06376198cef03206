"""Registry logins over the HTTP API, in-process (a real store, a fake engine): per account,
checked before they are kept, and the password in no response, log record or stored file."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from dockyard.server.registry_auth import MAX_REGISTRIES, RegistryAuth
from tests.files import file_contents
from tests.support.server import Server, running_server

HOST = "127.0.0.1:5000"
ALICE_PASSWORD = "alice-registry-pw-5b1e0c"
BOB_PASSWORD = "bob-registry-pw-93d2aa"
HUB = "https://index.docker.io/v1/"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as running:
        running.driver.registry_users.update({
            HOST: ("alice", ALICE_PASSWORD), "ghcr.io": ("bob", BOB_PASSWORD),
            HUB: ("alice", ALICE_PASSWORD)})
        yield running


def login(server: Server, host: str, username: str, password: str,
          who: str = "alice") -> tuple[int, dict[str, object]]:
    response = server.call("PUT", f"/v1/registries/{quote(host, safe='')}", who,
                           json={"username": username, "password": password})
    return response.status_code, response.json()


def test_a_login_is_checked_kept_and_listed_without_its_password(server: Server) -> None:
    assert server.call("GET", "/v1/registries").json() == []
    assert login(server, HOST, "alice", ALICE_PASSWORD) == (
        200, {"host": HOST, "username": "alice"})
    assert server.driver.login_checks == [(HOST, "alice")]
    (listed,) = server.call("GET", "/v1/registries").json()
    assert listed["host"] == HOST and listed["username"] == "alice"
    assert set(listed) == {"host", "username", "updated_at"}
    assert server.control.registries.auth_for(server.accounts["alice"], HOST) == RegistryAuth(
        "alice", ALICE_PASSWORD, HOST)


def test_the_host_in_the_path_may_be_any_spelling_docker_takes(server: Server) -> None:
    # unencoded with a port; Docker Hub by any of its names (the client sends a URL such as
    # https://index.docker.io/v1/ as the host it names: a path cannot carry its slashes)
    response = server.call("PUT", f"/v1/registries/{HOST}",
                           json={"username": "alice", "password": ALICE_PASSWORD})
    assert response.status_code == 200 and response.json()["host"] == HOST
    for spelling in ("index.docker.io", "Registry-1.Docker.io", "docker.io"):
        assert login(server, spelling, "alice", ALICE_PASSWORD) == (
            200, {"host": "docker.io", "username": "alice"})
    assert server.driver.login_checks[-1] == (HUB, "alice")
    assert [r["host"] for r in server.call("GET", "/v1/registries").json()] == [
        HOST, "docker.io"]
    assert server.call("DELETE", "/v1/registries/docker.io").json() == {"host": "docker.io"}


def test_two_accounts_never_see_or_use_each_others_logins(server: Server) -> None:
    alice, bob = server.accounts["alice"], server.accounts["bob"]
    assert login(server, HOST, "alice", ALICE_PASSWORD)[0] == 200
    assert login(server, "ghcr.io", "bob", BOB_PASSWORD, who="bob")[0] == 200
    assert [r["host"] for r in server.call("GET", "/v1/registries", "bob").json()] == [
        "ghcr.io"]
    assert [r["host"] for r in server.call("GET", "/v1/registries").json()] == [HOST]
    assert server.control.registries.auth_for(bob, HOST) is None
    assert server.control.registries.auth_for(alice, "ghcr.io") is None
    # bob cannot remove alice's login: it is a 404, as for a host nobody logged in to
    assert server.call("DELETE", f"/v1/registries/{HOST}", "bob").status_code == 404
    assert server.control.registries.auth_for(alice, HOST) is not None
    # bob logging in to the same host keeps his own login beside alice's
    server.driver.registry_users[HOST] = ("bob", BOB_PASSWORD)
    assert login(server, HOST, "bob", BOB_PASSWORD, who="bob")[0] == 200
    alice_auth = server.control.registries.auth_for(alice, HOST)
    bob_auth = server.control.registries.auth_for(bob, HOST)
    assert alice_auth is not None and alice_auth.password == ALICE_PASSWORD
    assert bob_auth is not None and bob_auth.password == BOB_PASSWORD


def test_logout_forgets_the_login(server: Server) -> None:
    assert login(server, HOST, "alice", ALICE_PASSWORD)[0] == 200
    response = server.call("DELETE", f"/v1/registries/{quote(HOST, safe='')}")
    assert response.status_code == 200 and response.json() == {"host": HOST}
    assert server.call("GET", "/v1/registries").json() == []
    assert server.control.registries.auth_for(server.accounts["alice"], HOST) is None
    again = server.call("DELETE", f"/v1/registries/{HOST}")
    assert again.status_code == 404 and HOST in again.json()["error"]


def test_a_refused_or_unreachable_login_is_an_error_and_nothing_is_kept(
        server: Server) -> None:
    status, body = login(server, HOST, "alice", "not-" + ALICE_PASSWORD)
    assert status == 400 and body["kind"] == "RegistryLoginRefused"
    assert HOST in str(body["error"]) and "401" in str(body["error"]) and body["hint"]
    status, body = login(server, "nowhere.example.org", "alice", ALICE_PASSWORD)
    assert status == 502 and body["kind"] == "RegistryUnreachable"
    assert "nowhere.example.org" in str(body["error"])
    assert server.call("GET", "/v1/registries").json() == []


@pytest.mark.parametrize(("host", "body", "status"), [
    ("bad%20host", {"username": "alice", "password": ALICE_PASSWORD}, 422),
    (HOST, {"username": "a" * 256, "password": ALICE_PASSWORD}, 422),
    (HOST, {"username": "alice", "password": "x" * (8 * 1024 + 1)}, 422),
    (HOST, {"username": "alice", "password": ""}, 422),
    (HOST, {"username": "alice"}, 422),
    (HOST, {"username": "alice", "password": [ALICE_PASSWORD]}, 422),
    ("x" * 1025, {"username": "alice", "password": ALICE_PASSWORD}, 422),
])
def test_bad_input_is_refused_without_asking_the_registry(
        server: Server, host: str, body: dict[str, object], status: int) -> None:
    response = server.call("PUT", f"/v1/registries/{host}", json=body)
    assert response.status_code == status, response.text
    assert ALICE_PASSWORD not in response.text  # a validation error never echoes the input
    assert server.driver.login_checks == []


def test_an_account_keeps_at_most_fifty_logins(server: Server) -> None:
    for n in range(MAX_REGISTRIES + 1):
        server.driver.registry_users[f"r{n}.example.com"] = ("alice", ALICE_PASSWORD)
    for n in range(MAX_REGISTRIES):
        assert login(server, f"r{n}.example.com", "alice", ALICE_PASSWORD)[0] == 200
    status, body = login(server, f"r{MAX_REGISTRIES}.example.com", "alice", ALICE_PASSWORD)
    assert status == 422 and "50 registries" in str(body["error"])
    assert login(server, "r0.example.com", "alice", ALICE_PASSWORD)[0] == 200  # a replacement
    assert len(server.call("GET", "/v1/registries").json()) == MAX_REGISTRIES


def test_the_password_is_in_no_response_log_or_stored_file(
        server: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    login(server, HOST, "alice", ALICE_PASSWORD)
    login(server, HOST, "alice", "wrong-" + BOB_PASSWORD)
    login(server, "ghcr.io", "bob", BOB_PASSWORD, who="bob")
    login(server, "nowhere.example.org", "bob", BOB_PASSWORD, who="bob")
    server.call("GET", "/v1/registries")
    server.call("GET", "/v1/registries", "bob")
    server.call("DELETE", "/v1/registries/ghcr.io", "bob")
    server.call("PUT", f"/v1/registries/{HOST}",
                json={"username": ["alice"], "password": ALICE_PASSWORD})
    assert any("registry login" in r.getMessage() for r in caplog.records)
    for secret in (ALICE_PASSWORD, BOB_PASSWORD):
        for body in server.bodies:
            assert secret not in body
        assert secret not in caplog.text
        for record in caplog.records:
            assert secret not in record.getMessage() and secret not in repr(record.args)
        for path, content in file_contents(server.settings.data):
            assert secret.encode() not in content, f"{secret!r} in {path}"
