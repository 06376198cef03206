"""Tenancy over the HTTP API, in-process: tokens, accounts that cannot see each other, configs
(secrets) and where their values must never appear, and the playground's per-account limits.

A real SQLite store and a fake engine (`tests.fakes.FakeDriver`, here taught to print its
containers' environment and secret files so that log redaction is exercised). The engine-level
counterpart, on a real playground server, is `tests/engine/test_tenants.py`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route

from dockyard.ids import new_deployment_id
from dockyard.naming import NamingMode
from dockyard.server import dashboard
from dockyard.server.settings import Limits
from tests.files import file_contents
from tests.support.ledger import (
    LEDGER,
    LEDGER_CONFIGS,
    LEDGER_CONTEXT,
    deploy_ledger,
)
from tests.support.server import IMAGE, Server, digest_of, make_tar, running_server

PUBLIC = {"/v1/health"}  # the only route, besides the OpenAPI document and docs, without token

Playground = Server  # the playground fixture's type: a Server in playground mode


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as running:
        yield running


@pytest.fixture
def playground(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path, mode=NamingMode.PLAYGROUND, zone="prod1a.localhost",
                        limits=Limits(), allow_images=("dockyard/busybox:*",)) as running:
        yield running


# == 1. Tokens and accounts =======================================================================

def protected_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route of the app that needs a token: all but PUBLIC and the
    OpenAPI/docs routes. A route of another kind (a websocket, a mount) fails the test, so that
    whoever adds one decides how it is authenticated and covers it here."""
    docs = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    found: list[tuple[str, str]] = []
    for route in app.routes:
        if isinstance(route, Route) and (route.path in docs or route.path in PUBLIC):
            continue
        if isinstance(route, APIRoute) and dashboard.serves(route.path):
            continue  # the dashboard's sessions, not tokens: tests/api/test_dashboard_api.py
        assert isinstance(route, APIRoute), f"a route of a new kind: {route!r}; cover it here"
        for method in sorted(route.methods or ()):
            found.append((method, route.path))
    return found


def _fill(path: str, values: dict[str, str]) -> str:
    """The route's path with each `{param}` replaced (a param this test does not know: "x")."""
    out = path
    while "{" in out:
        start = out.index("{")
        end = out.index("}", start)
        name = out[start + 1:end].partition(":")[0]
        out = out[:start] + values.get(name, "x") + out[end + 1:]
    return out


def _bodies() -> dict[tuple[str, str], dict[str, Any]]:
    """A body each route would accept from a valid token (so the 401 is the token's doing)."""
    return {
        ("POST", "/v1/projects/{project}/deployments"): {
            "json": {"project": {"name": LEDGER, "services": {"x": {"image": IMAGE}}}}},
        ("POST", "/v1/projects/{project}/down"): {"json": {}},
        ("PUT", "/v1/projects/{project}/configs/{name}"): {
            "json": {"value": "replaced-by-nobody"}},
        ("PUT", "/v1/contexts/{digest}"): {"content": make_tar({"Dockerfile": b"FROM x\n"})},
    }


def test_only_health_and_the_docs_are_public(server: Server) -> None:
    assert server.call("GET", "/v1/health", None).status_code == 200
    assert server.call("GET", "/v1/openapi.json", None).status_code == 200
    assert server.call("GET", "/v1/docs", None).status_code == 200
    routes = protected_routes(server.app)
    # the enumeration does find the API (a sanity check, not the list of what is covered)
    assert ("GET", "/v1/whoami") in routes and ("PUT", "/v1/contexts/{digest}") in routes
    assert len(routes) >= 15


def test_every_endpoint_refuses_a_missing_malformed_unknown_or_revoked_token(
        server: Server) -> None:
    deployment = deploy_ledger(server)
    alice = server.accounts["alice"]
    spare = server.store.create_token(alice, label="laptop")
    assert server.call("GET", "/v1/whoami",
                       headers={"Authorization": f"Bearer {spare}"}).status_code == 200
    (spare_id,) = [i for i, label, _ in server.store.tokens(alice) if label == "laptop"]
    # another account cannot revoke it; its owner can
    assert not server.store.revoke_token(server.accounts["bob"], spare_id)
    assert server.call("GET", "/v1/whoami",
                       headers={"Authorization": f"Bearer {spare}"}).status_code == 200
    assert server.store.revoke_token(alice, spare_id)

    good = server.tokens["alice"]
    refused = {
        "no header": {},
        "empty header": {"Authorization": ""},
        "no token": {"Authorization": "Bearer "},
        "another scheme": {"Authorization": f"Basic {good}"},
        "no scheme": {"Authorization": good},
        "unknown token": {"Authorization": "Bearer dky_" + "A" * 43},
        "malformed token": {"Authorization": "Bearer ' OR 1=1; drop table tokens --"},
        "a token with a character changed": {
            "Authorization": f"Bearer {good[:-1]}{'B' if good[-1] != 'B' else 'C'}"},
        "a token with one more character": {"Authorization": f"Bearer {good}x"},
        "a token's hash": {"Authorization": "Bearer " + hashlib.sha256(good.encode()).hexdigest()},
        "revoked token": {"Authorization": f"Bearer {spare}"},
    }
    values = {"project": LEDGER, "deployment": deployment, "digest": digest_of(LEDGER_CONTEXT),
              "name": "LEDGER_KEY"}
    bodies = _bodies()
    before = (len(server.store.deployments(alice, None)), set(server.driver.items),
              server.control.configs.values(alice, LEDGER), sorted(os.listdir(
                  server.settings.data / "contexts")))
    for method, path in protected_routes(server.app):
        url = _fill(path, values)
        for label, headers in refused.items():
            response = server.call(method, url, headers=headers,
                                   **bodies.get((method, path), {}))
            assert response.status_code == 401, (method, path, label, response.text)
            if method != "HEAD":
                body = response.json()
                assert body["kind"] == "Unauthorized" and "token" in body["error"], body
                assert "ledger" not in response.text and deployment not in response.text
    # nothing was done on anyone's behalf
    after = (len(server.store.deployments(alice, None)), set(server.driver.items),
             server.control.configs.values(alice, LEDGER), sorted(os.listdir(
                 server.settings.data / "contexts")))
    assert after == before
    # the control: with the right token every one of them gets past the token check (writes
    # get a body they refuse after it, so nothing starts behind the test's back)
    for method, path in protected_routes(server.app):
        invalid: list[str] | None = [] if method in ("POST", "PUT") else None
        response = server.call(method, _fill(path, values), json=invalid)
        assert response.status_code != 401, (method, path, response.text)


def test_a_malformed_body_without_a_token_is_401_too(server: Server) -> None:
    """Without a token the answer is 401 whatever the body: an anonymous client learns
    nothing about what an endpoint would accept (FastAPI parses a JSON body before it runs
    the dependencies, the token check among them)."""
    for method, path in protected_routes(server.app):
        if method not in ("POST", "PUT"):
            continue
        response = server.call(method, _fill(path, {"project": "shop"}), None,
                               content=b'{"value": "', headers={
                                   "content-type": "application/json"})
        assert response.status_code == 401, (method, path, response.text)


def _same_answer(mine: httpx.Response, missing: httpx.Response, asked_mine: list[str],
                 asked_missing: list[str]) -> None:
    """The two responses are identical but for the names each request itself named."""
    assert mine.status_code == missing.status_code, (mine.text, missing.text)
    assert mine.headers.get("content-type") == missing.headers.get("content-type")
    left, right = mine.text, missing.text
    for index, name in enumerate(asked_mine):
        left = left.replace(name, f"<{index}>")
    for index, name in enumerate(asked_missing):
        right = right.replace(name, f"<{index}>")
    if left or right:
        assert json.loads(left) == json.loads(right)


def _alice_secrets(server: Server) -> list[str]:
    alice = server.accounts["alice"]
    ids = [r.id for r in server.store.deployments(alice, None)]
    return ["ledger", "LEDGER", "alice", digest_of(LEDGER_CONTEXT)[7:], *ids,
            *LEDGER_CONFIGS.values()]


def _nothing_of_alice(server: Server, response: httpx.Response, asked: list[str]) -> None:
    text = response.text
    for name in asked:
        text = text.replace(name, "")
    for secret in _alice_secrets(server):
        assert secret not in text, (secret, response.request.url, response.text)


def test_another_account_gets_404_exactly_as_for_what_does_not_exist(server: Server) -> None:
    deployment = deploy_ledger(server)
    mine_before = server.containers(LEDGER)
    assert set(mine_before) == {"ledgerweb", "ledgerdb", "ledgerapp"}
    # Bob has a project of his own (so that his logs can be asked about one deployment).
    bob_deployment, status = server.up("bravo", {"b": {"image": IMAGE}}, who="bob")
    assert status == "succeeded"
    missing_id = new_deployment_id()
    nothere = "nothere"

    pairs: list[tuple[str, str, str, list[str], list[str]]] = [
        # (method, Alice's resource, a missing one, names the first asks, names the second asks)
        ("GET", f"/v1/deployments/{deployment}", f"/v1/deployments/{missing_id}",
         [deployment], [missing_id]),
        ("GET", f"/v1/deployments/{deployment}/events", f"/v1/deployments/{missing_id}/events",
         [deployment], [missing_id]),
        ("GET", f"/v1/deployments/{deployment}/events?after=1",
         f"/v1/deployments/{missing_id}/events?after=1", [deployment], [missing_id]),
        ("GET", f"/v1/projects/{LEDGER}/logs", f"/v1/projects/{nothere}/logs",
         [LEDGER], [nothere]),
        ("GET", f"/v1/projects/{LEDGER}/logs?type=run&service=ledgerweb",
         f"/v1/projects/{nothere}/logs?type=run&service=ledgerweb", [LEDGER], [nothere]),
        ("GET", f"/v1/projects/bravo/logs?deployment={deployment}",
         f"/v1/projects/bravo/logs?deployment={missing_id}", [deployment], [missing_id]),
        ("GET", f"/v1/projects/{LEDGER}/configs", f"/v1/projects/{nothere}/configs",
         [LEDGER], [nothere]),
        ("DELETE", f"/v1/projects/{LEDGER}/configs/LEDGER_KEY",
         f"/v1/projects/{nothere}/configs/LEDGER_KEY", [LEDGER, "LEDGER_KEY"],
         [nothere, "LEDGER_KEY"]),
        ("GET", f"/v1/projects/{LEDGER}/services", f"/v1/projects/{nothere}/services",
         [LEDGER], [nothere]),
        ("GET", f"/v1/deployments?project={LEDGER}", f"/v1/deployments?project={nothere}",
         [LEDGER], [nothere]),
        ("POST", f"/v1/projects/{LEDGER}/down", f"/v1/projects/{nothere}/down",
         [LEDGER], [nothere]),
    ]
    for method, theirs, missing, asked_theirs, asked_missing in pairs:
        kwargs: dict[str, Any] = {"json": {}} if method == "POST" else {}
        foreign = server.call(method, theirs, "bob", **kwargs)
        absent = server.call(method, missing, "bob", **kwargs)
        _same_answer(foreign, absent, asked_theirs, asked_missing)
        _nothing_of_alice(server, foreign, asked_theirs)
        if "/deployments/" in theirs or "/logs" in theirs or method in ("POST", "DELETE"):
            assert foreign.status_code == 404, (method, theirs, foreign.text)
            assert set(foreign.json()) >= {"error", "hint", "kind"}

    # what Bob's own listings say holds nothing of Alice
    for path in ("/v1/whoami", "/v1/projects", "/v1/deployments", "/v1/deployments?limit=1000",
                 "/v1/projects/bravo/services", "/v1/projects/bravo/configs",
                 "/v1/projects/bravo/logs", f"/v1/deployments/{bob_deployment}"):
        response = server.call("GET", path, "bob")
        assert response.status_code == 200, (path, response.text)
        _nothing_of_alice(server, response, [])

    # Bob's writes under the same names land in his own namespace and touch nothing of Alice's
    server.set_config(LEDGER, "LEDGER_KEY", "bob-owns-this-one", who="bob")
    assert server.control.configs.values(server.accounts["alice"], LEDGER) == LEDGER_CONFIGS
    _, status = server.up(LEDGER, {"ledgerweb": {"image": IMAGE}}, who="bob")
    assert status == "succeeded"
    assert server.containers(LEDGER) == mine_before
    rows = server.call("GET", f"/v1/projects/{LEDGER}/services").json()
    assert {r["service"] for r in rows} == {"ledgerweb", "ledgerdb", "ledgerapp"}
    assert all(r["deployment"] == deployment for r in rows)
    assert server.down(LEDGER, who="bob") == "succeeded"
    assert server.containers(LEDGER) == mine_before
    assert server.containers(LEDGER, "bob") == {}


def test_ps_and_configs_of_a_foreign_or_missing_project_answer_404(server: Server) -> None:
    """docs/configs.md: "Another account's projects, deployments, logs, configs and events
    answer 404, exactly as if they did not exist." The listing endpoints answer 200 `[]` for
    both (indistinguishable, as the test above checks) rather than 404."""
    deploy_ledger(server)
    for path in (f"/v1/projects/{LEDGER}/services", f"/v1/projects/{LEDGER}/configs",
                 "/v1/projects/nothere/services", "/v1/projects/nothere/configs"):
        response = server.call("GET", path, "bob")
        assert response.status_code == 404, (path, response.status_code, response.text)


def test_another_accounts_build_context_is_neither_visible_nor_usable(server: Server) -> None:
    """A build context is Alice's upload: Bob must not learn that it exists (HEAD answers 200
    only if someone uploaded exactly that content) nor build it without uploading it."""
    deploy_ledger(server)
    digest = digest_of(LEDGER_CONTEXT)
    never = digest_of(b"never uploaded by anyone")
    assert server.call("HEAD", f"/v1/contexts/{digest}", "alice").status_code == 200
    foreign = server.call("HEAD", f"/v1/contexts/{digest}", "bob")
    absent = server.call("HEAD", f"/v1/contexts/{never}", "bob")
    assert (foreign.status_code, absent.status_code) == (404, 404)
    services = {"app": {"build": {"context": "."}}}
    uses_foreign = server.deploy("bravo", services, "bob", builds={"app": {"digest": digest}})
    uses_absent = server.deploy("bravo", services, "bob", builds={"app": {"digest": never}})
    assert uses_absent.status_code == 422
    assert uses_foreign.status_code == 422, uses_foreign.text
    _same_answer(uses_foreign, uses_absent, [digest], [never])


# == 2. The configs API ===========================================================================

def test_config_names_are_checked(server: Server) -> None:
    for name in ("A", "_", "a1", "DB_PASSWORD", "_x_9", "x" * 64):
        response = server.call("PUT", f"/v1/projects/shop/configs/{name}", json={"value": "v"})
        assert response.status_code == 200, (name, response.text)
        assert response.json()["name"] == name and response.json()["set"] is True
    for name in ("1abc", "a-b", "a.b", "a%20b", "x" * 65, "%C3%A9t%C3%A9", "%24X", "a%2Bb"):
        for method, body in (("PUT", {"value": "v"}), ("DELETE", None)):
            response = server.call(method, f"/v1/projects/shop/configs/{name}", json=body)
            assert response.status_code == 422, (method, name, response.text)
            assert response.json()["kind"] == "ConfigInvalid"
            assert "^[A-Za-z_][A-Za-z0-9_]{0,63}$" in (response.json()["hint"] or "")
    for project in ("Shop", "-shop", "sh%20op"):
        response = server.call("PUT", f"/v1/projects/{project}/configs/A", json={"value": "v"})
        assert response.status_code == 422, (project, response.text)
    listed = {c["name"] for c in server.call("GET", "/v1/projects/shop/configs").json()}
    assert listed == {"A", "_", "a1", "DB_PASSWORD", "_x_9", "x" * 64}


def test_listing_configs_never_returns_values_and_if_not_set_keeps_one(server: Server) -> None:
    server.set_config("shop", "DB_PASSWORD", "first-value-3e4f")
    server.set_config("shop", "API_KEY", "api-key-value-5a6b")
    listing = server.call("GET", "/v1/projects/shop/configs")
    assert listing.status_code == 200
    assert [set(c) for c in listing.json()] == [{"name", "updated_at"}] * 2
    assert [c["name"] for c in listing.json()] == ["API_KEY", "DB_PASSWORD"]
    assert "value" not in listing.text and "3e4f" not in listing.text
    assert "5a6b" not in listing.text
    stamp = {c["name"]: c["updated_at"] for c in listing.json()}

    kept = server.call("PUT", "/v1/projects/shop/configs/DB_PASSWORD",
                       json={"value": "second-value-7c8d", "if_not_set": True})
    assert kept.status_code == 200 and kept.json()["set"] is False
    assert "7c8d" not in kept.text and "3e4f" not in kept.text
    alice = server.accounts["alice"]
    assert server.control.configs.values(alice, "shop")["DB_PASSWORD"] == "first-value-3e4f"
    again = {c["name"]: c["updated_at"]
             for c in server.call("GET", "/v1/projects/shop/configs").json()}
    assert again == stamp
    new = server.call("PUT", "/v1/projects/shop/configs/NEW_ONE",
                      json={"value": "new-value-9e0f", "if_not_set": True})
    assert new.status_code == 200 and new.json()["set"] is True
    assert server.control.configs.values(alice, "shop")["NEW_ONE"] == "new-value-9e0f"
    replaced = server.call("PUT", "/v1/projects/shop/configs/DB_PASSWORD",
                           json={"value": "third-value-1a2b"})
    assert replaced.json()["set"] is True
    assert server.control.configs.values(alice, "shop")["DB_PASSWORD"] == "third-value-1a2b"


def test_deleting_configs(server: Server) -> None:
    server.set_config("shop", "GONE", "gone-value-4c5d")
    missing = server.call("DELETE", "/v1/projects/shop/configs/NEVER_SET")
    assert missing.status_code == 404 and missing.json()["kind"] == "ConfigNotFound"
    assert "NEVER_SET" in missing.json()["error"]
    no_project = server.call("DELETE", "/v1/projects/nothere/configs/GONE")
    assert no_project.status_code == 404
    removed = server.call("DELETE", "/v1/projects/shop/configs/GONE")
    assert removed.status_code == 204 and removed.content == b""
    assert server.call("GET", "/v1/projects/shop/configs").json() == []
    assert server.call("DELETE", "/v1/projects/shop/configs/GONE").status_code == 404


CANARY = "LEAK-canary-7f3a9"


@pytest.mark.parametrize("body", [
    {"value": 7_357_735_773},
    {"value": 73577.35773},
    {"value": {"nested": CANARY}},
    {"value": [CANARY]},
    {"value": True, "note": CANARY},
    {"value": None, "if_not_set": CANARY},
    {"valeu": CANARY},
    {"value": CANARY, "if_not_set": {"x": CANARY}},
    {"value": CANARY + "x" * (64 * 1024)},  # over the size limit
    CANARY,
    [CANARY],
])
def test_an_invalid_config_request_does_not_echo_the_value(server: Server, body: Any,
                                                           caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    caplog.set_level(logging.DEBUG)
    response = server.call("PUT", "/v1/projects/shop/configs/DB_PASSWORD", json=body)
    assert response.status_code == 422, response.text
    assert set(response.json()) >= {"error", "kind"}
    for needle in (CANARY, "7357735773", "73577.35773", "nested"):
        assert needle not in response.text, response.text
        assert needle not in caplog.text
    assert server.call("GET", "/v1/projects/shop/configs").status_code == 404  # nothing set
    raw = server.call("PUT", "/v1/projects/shop/configs/DB_PASSWORD",
                      content=b'{"value": "' + CANARY.encode() + b'"',  # truncated JSON
                      headers={**server.auth("alice"), "content-type": "application/json"})
    assert raw.status_code == 422 and CANARY not in raw.text
    assert CANARY not in caplog.text


THREE_WAYS = {
    "api": {"image": IMAGE, "environment": {
        "DB_PASSWORD": None, "DATABASE_URL": "postgres://app:${DB_PASSWORD}@db/app",
        "PLAIN": "literal $$HOME"}},
    "files": {"image": IMAGE, "secrets": ["s"]},
    "web": {"image": IMAGE, "environment": {"GREETING": "hello"}},
}
S_SECRET = {"s": {"external": True}}


def test_configs_reach_containers_three_ways(server: Server) -> None:
    server.set_config("shop", "DB_PASSWORD", "pw-value-1d2e")
    server.set_config("shop", "s", "secret-file-value-3f4a\nsecond line\n")
    _, status = server.up("shop", THREE_WAYS, secrets=S_SECRET)
    assert status == "succeeded"
    api = server.spec_of("shop", "api")
    assert api.environment["DB_PASSWORD"] == "pw-value-1d2e"
    assert api.environment["DATABASE_URL"] == "postgres://app:pw-value-1d2e@db/app"
    assert api.environment["PLAIN"] == "literal $HOME"
    assert not [m for m in api.mounts if m.type == "bind"]
    files = server.spec_of("shop", "files")
    (mount,) = [m for m in files.mounts if m.target == "/run/secrets/s"]
    assert mount.type == "bind" and mount.read_only and mount.source
    source = Path(mount.source)
    assert source.read_text() == "secret-file-value-3f4a\nsecond line\n"
    assert stat.S_IMODE(source.stat().st_mode) == 0o400
    assert source.is_relative_to(server.settings.data)
    assert "pw-value-1d2e" not in json.dumps(dict(files.environment))
    web = server.spec_of("shop", "web")
    assert not [m for m in web.mounts if m.type == "bind"]
    assert not any("value" in v for v in web.environment.values())
    # `down` removes the secret files
    assert server.down("shop") == "succeeded"
    assert not source.exists()


def test_a_missing_config_is_refused_with_every_name_and_user(server: Server) -> None:
    server.set_config("shop", "SET_ONE", "set-value-5b6c")
    services = {
        "api": {"image": IMAGE, "environment": {"DB_PASSWORD": None, "SET_ONE": None,
                                                "URL": "x://${API_TOKEN}/${SET_ONE}"}},
        "worker": {"image": IMAGE, "environment": {"TOKEN": "${API_TOKEN}"},
                   "secrets": ["tls_key"]},
        "web": {"image": IMAGE, "secrets": ["tls_key"]},
        "plain": {"image": IMAGE},
    }
    response = server.deploy("shop", services, secrets={"tls_key": {"external": True}})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["kind"] == "ProjectInvalid"
    missing = {d["message"]: d for d in body["diagnostics"] if d["code"] == "config-missing"}
    assert len(missing) == 3, body
    wanted = {"DB_PASSWORD": ["api"], "API_TOKEN": ["api", "worker"],
              "tls_key": ["web", "worker"]}
    for name, users in wanted.items():
        (message,) = [m for m in missing if f"'{name}'" in m]
        assert all(user in message for user in users), message
        assert "plain" not in message
        assert missing[message]["hint"] and name in missing[message]["hint"]
    assert "SET_ONE" not in json.dumps(body).replace("${SET_ONE}", "")
    # nothing was recorded, created or started
    alice = server.accounts["alice"]
    assert not server.driver.items and not server.driver.networks
    assert server.store.deployments(alice, None) == []
    assert server.store.statuses(alice, "shop") == []


def test_a_changed_config_replaces_exactly_the_services_using_it(server: Server) -> None:
    server.set_config("shop", "DB_PASSWORD", "pw-value-1d2e")
    server.set_config("shop", "s", "secret-file-value-3f4a")
    assert server.up("shop", THREE_WAYS, secrets=S_SECRET)[1] == "succeeded"
    first = server.containers("shop")

    server.set_config("shop", "DB_PASSWORD", "pw-value-changed-7b8c")
    assert server.up("shop", THREE_WAYS, secrets=S_SECRET)[1] == "succeeded"
    second = server.containers("shop")
    assert second["api"] and not second["api"] & first["api"]
    assert second["files"] == first["files"] and second["web"] == first["web"]
    assert server.spec_of("shop", "api").environment["DATABASE_URL"] == \
        "postgres://app:pw-value-changed-7b8c@db/app"

    server.set_config("shop", "s", "secret-file-value-changed-9d0e")
    assert server.up("shop", THREE_WAYS, secrets=S_SECRET)[1] == "succeeded"
    third = server.containers("shop")
    assert third["files"] and not third["files"] & second["files"]
    assert third["api"] == second["api"] and third["web"] == second["web"]
    (mount,) = [m for m in server.spec_of("shop", "files").mounts
                if m.target == "/run/secrets/s"]
    assert Path(str(mount.source)).read_text() == "secret-file-value-changed-9d0e"



def test_an_unchanged_up_with_configs_restarts_nothing(server: Server) -> None:
    """docs/deployments.md: a no-op `up` restarts nothing; that holds for services that use
    configs too (their config hash includes a keyed digest of the values they use)."""
    server.set_config("shop", "DB_PASSWORD", "pw-value-1d2e")
    server.set_config("shop", "s", "secret-file-value-3f4a")
    assert server.up("shop", THREE_WAYS, secrets=S_SECRET)[1] == "succeeded"
    first = server.containers("shop")
    deployment, status = server.up("shop", THREE_WAYS, secrets=S_SECRET)
    assert status == "succeeded"
    assert server.containers("shop") == first
    reasons = {e.service: e.reason for e in server.store.events(server.accounts["alice"],
                                                               deployment)}
    assert reasons == dict.fromkeys(THREE_WAYS, "unchanged: not restarted")


def test_changing_a_config_alone_restarts_nothing(server: Server) -> None:
    server.set_config("shop", "DB_PASSWORD", "pw-value-1d2e")
    server.set_config("shop", "s", "secret-file-value-3f4a")
    assert server.up("shop", THREE_WAYS, secrets=S_SECRET)[1] == "succeeded"
    alice = server.accounts["alice"]
    containers = dict(server.driver.items)
    history = server.store.deployments(alice, None)
    states = server.store.statuses(alice, "shop")
    server.set_config("shop", "DB_PASSWORD", "pw-value-changed-7b8c")
    server.set_config("shop", "s", "secret-file-value-changed-9d0e")
    assert server.call("DELETE", "/v1/projects/shop/configs/s").status_code == 204
    time.sleep(0.3)  # anything started in the background would show by now
    assert server.driver.items == containers
    assert server.store.deployments(alice, None) == history
    assert server.store.statuses(alice, "shop") == states
    assert server.spec_of("shop", "api").environment["DB_PASSWORD"] == "pw-value-1d2e"


# == 3. Where config values must never appear =====================================================

LEAKS = ("LEAK-canary-7f3a9", "LEAK-canary-secret-51c2", "LEAK-canary-second-88d0")
# a service that crashes: its failure reason quotes its last lines, which print the values
FLAKY = {"image": IMAGE, "command": ["crash"], "environment": {"DB_PASSWORD": None},
         "secrets": ["s"]}


def _where(value: str, text: str) -> str:
    at = text.index(value)
    return text[max(0, at - 300):at + 100]


def assert_nowhere(server: Server, caplog: pytest.LogCaptureFixture,
                   values: tuple[str, ...]) -> None:
    """No response body, event reason, stored deployment, file of the server's data directory
    (the SQLite database, its WAL, everything else) or log record holds any of `values`."""
    alice = server.accounts["alice"]
    records = server.store.deployments(alice, None, limit=1000)
    database = server.settings.data / "dockyard.db"
    assert database.stat().st_size > 0
    for value in values:
        for body in server.bodies:
            assert value not in body, f"{value!r} in a response: ...{_where(value, body)}"
        for record in records:
            for event in server.store.events(alice, record.id):
                assert value not in event.reason, event
            assert value not in json.dumps(server.store.deployed_project(alice, record.id))
        for suffix in ("", "-wal", "-shm"):
            file = Path(f"{database}{suffix}")
            if file.exists():
                assert value.encode() not in file.read_bytes(), file
        for stored, content in file_contents(server.settings.data):  # after `down`: no secrets
            assert value.encode() not in content, stored
        for logged in caplog.records:
            assert value not in logged.getMessage(), logged
            assert value not in str(logged.exc_text or ""), logged
        assert value not in caplog.text


def _everything_a_client_can_ask(server: Server, deployments: list[str]) -> str:
    """GET every read endpoint of the project; the run logs' text."""
    paths = ["/v1/whoami", "/v1/projects", "/v1/deployments", "/v1/deployments?project=shop",
             "/v1/projects/shop/services", "/v1/projects/shop/configs",
             "/v1/projects/shop/logs", "/v1/projects/shop/logs?type=build",
             "/v1/projects/shop/logs?service=api&service=files&tail=5"]
    for deployment in deployments:
        paths += [f"/v1/deployments/{deployment}", f"/v1/deployments/{deployment}/events",
                  f"/v1/projects/shop/logs?deployment={deployment}"]
    for path in paths:
        response = server.call("GET", path)
        assert response.status_code == 200, (path, response.text)
    return server.call("GET", "/v1/projects/shop/logs?type=run").text


def test_config_values_appear_nowhere_but_in_containers(server: Server,
                                                        caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    caplog.set_level(logging.DEBUG)
    alice = server.accounts["alice"]
    server.set_config("shop", "DB_PASSWORD", LEAKS[0])
    server.set_config("shop", "s", LEAKS[1])
    services: dict[str, Any] = {**THREE_WAYS, "flaky": FLAKY}
    # attempts that are refused, each holding a value
    server.call("PUT", "/v1/projects/shop/configs/1bad", json={"value": LEAKS[0]})
    server.call("PUT", "/v1/projects/shop/configs/BAD", json={"value": {"v": LEAKS[0]}})
    server.call("PUT", "/v1/projects/shop/configs/BIG", json={"value": LEAKS[0] * 5000})
    server.call("PUT", "/v1/projects/shop/configs/DB_PASSWORD",
                json={"value": LEAKS[2], "if_not_set": True})
    refused = server.deploy("shop", {"x": {"image": IMAGE, "environment": {"NOPE": None}}})
    assert refused.status_code == 422

    first, status = server.up("shop", services, secrets=S_SECRET)
    assert status == "failed"  # flaky crashes; the others complete
    flaky = [e for e in server.store.events(alice, first) if e.service == "flaky"][-1]
    assert "****" in flaky.reason, flaky.reason  # its output was quoted, and redacted
    second, _ = server.up("shop", services, secrets=S_SECRET)
    logs = _everything_a_client_can_ask(server, [first, second])
    # the containers did print the values (the fake engine prints env and files): redacted
    assert "env DB_PASSWORD=****" in logs, logs
    assert "file /run/secrets/s: ****" in logs, logs
    assert "postgres://app:****@db/app" in logs, logs
    assert server.down("shop") == "succeeded"
    assert_nowhere(server, caplog, LEAKS)


def test_a_rotated_config_value_stays_redacted(server: Server,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """Changing a config restarts nothing (by design), so running containers keep the value
    they were given: whatever they print of it must still be redacted, after the change and
    after the next `up` (where a failed replacement leaves the previous version running)."""
    caplog.set_level(logging.DEBUG)
    server.set_config("shop", "DB_PASSWORD", LEAKS[0])
    server.set_config("shop", "s", LEAKS[1])
    services: dict[str, Any] = {**THREE_WAYS, "flaky": FLAKY}
    first, _ = server.up("shop", services, secrets=S_SECRET)
    server.set_config("shop", "DB_PASSWORD", LEAKS[2])
    _everything_a_client_can_ask(server, [first])
    second, _ = server.up("shop", services, secrets=S_SECRET)
    _everything_a_client_can_ask(server, [first, second])
    assert server.down("shop") == "succeeded"
    assert_nowhere(server, caplog, LEAKS)


# == 4. Playground limits =========================================================================

def _refused_for_limits(server: Server, project: str, services: dict[str, Any],
                        paths: set[str]) -> None:
    alice = server.accounts["alice"]
    items = dict(server.driver.items)
    networks = set(server.driver.networks)
    history = server.store.deployments(alice, None)
    response = server.deploy(project, services)
    assert response.status_code == 422, response.text
    body = response.json()
    found = {d["path"] for d in body["diagnostics"] if d["code"] == "limit-exceeded"}
    assert found == paths, body
    assert all(d["hint"] for d in body["diagnostics"])
    assert server.driver.items == items and server.driver.networks == networks
    assert server.store.deployments(alice, None) == history
    assert project not in server.store.projects(alice) or project in {
        r.project for r in history}


def test_playground_limits_refuse_what_is_over_them(playground: Playground) -> None:
    five = {f"s{i}": {"image": IMAGE} for i in range(5)}
    _refused_for_limits(playground, "shop", five, {"services"})
    _refused_for_limits(playground, "shop", {"web": {"image": IMAGE, "deploy": {"replicas": 2}}},
                        {"services.web.deploy.replicas"})
    _refused_for_limits(playground, "shop", {"web": {"image": IMAGE, "scale": 3}},
                        {"services.web.deploy.replicas"})
    _refused_for_limits(playground, "shop", {"web": {"image": IMAGE, "deploy": {
        "resources": {"limits": {"cpus": 3}}}}}, {"services.web.deploy.resources.limits.cpus"})
    _refused_for_limits(playground, "shop", {"web": {"image": IMAGE, "deploy": {
        "resources": {"limits": {"memory": "2g"}}}}},
        {"services.web.deploy.resources.limits.memory"})
    _refused_for_limits(playground, "shop", {"web": {"image": IMAGE, "deploy": {
        "resources": {"reservations": {"cpus": "2.5", "memory": "1025m"}}}}},
        {"services.web.deploy.resources.reservations.cpus",
         "services.web.deploy.resources.reservations.memory"})
    assert not playground.driver.items
    # exactly at the limits is allowed
    at_limits = {f"s{i}": {"image": IMAGE, "deploy": {"replicas": 1, "resources": {
        "limits": {"cpus": 2, "memory": "1g"}}}} for i in range(4)}
    assert playground.up("shop", at_limits)[1] == "succeeded"


def test_playground_allows_one_project_per_account_until_it_is_down(
        playground: Playground) -> None:
    assert playground.up("one", {"web": {"image": IMAGE}})[1] == "succeeded"
    _refused_for_limits(playground, "two", {"web": {"image": IMAGE}}, {"name"})
    refused = playground.deploy("two", {"web": {"image": IMAGE}})
    assert "one" in refused.json()["diagnostics"][0]["message"]
    # the deployed project itself may be deployed again; another account has its own quota
    assert playground.up("one", {"web": {"image": IMAGE}, "db": {"image": IMAGE}})[1] == \
        "succeeded"
    assert playground.up("theirs", {"web": {"image": IMAGE}}, who="bob")[1] == "succeeded"
    assert playground.down("one") == "succeeded"
    assert playground.up("two", {"web": {"image": IMAGE}})[1] == "succeeded"


def test_playground_gives_a_service_without_limits_the_maximum(playground: Playground) -> None:
    services = {"free": {"image": IMAGE},
                "small": {"image": IMAGE, "deploy": {"resources": {
                    "limits": {"cpus": "0.5", "memory": "256m"}}}}}
    assert playground.up("shop", services)[1] == "succeeded"
    free = playground.spec_of("shop", "free")
    assert free.nano_cpus == 2_000_000_000 and free.memory == 1 << 30
    small = playground.spec_of("shop", "small")
    assert small.nano_cpus == 500_000_000 and small.memory == 256 << 20

