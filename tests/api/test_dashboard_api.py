"""The dashboard over the in-process app (fake engine): sessions and CSRF, what each account
sees, and that its pages and streams say what the API says, config values never included.

A browser is played by a cookie-keeping `TestClient` per person (`Browser`); the API side is
the real Python client (`Client.dashboard_link`), as `dockyard dashboard` uses it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from dockyard.server import dashboard
from tests.support.server import IMAGE, Server, follow, log_answer, running_server

SECRET = "dash-secret-4f1c9e"  # a config value: on no page, in no stream
HTML = {"Accept": "text/html"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as running:
        yield running


class Browser:
    """One person's browser: its own cookies, and the CSRF token of the page it last read."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = TestClient(server.app, base_url="http://testserver",
                               follow_redirects=False)
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self.http.get(path, headers=HTML, **kwargs)
        found = re.search(r'name="csrf-token" content="([^"]+)"', response.text)
        if found:
            self.csrf = found.group(1)
        self.server.bodies.append(response.text)
        return response

    def post(self, path: str, form: dict[str, str], *, csrf: str | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        data = {"csrf": self.csrf if csrf is None else csrf, **form}
        response: httpx.Response = self.http.post(path, data=data, headers=headers or {})
        self.server.bodies.append(response.text)
        return response

    def log_in(self, who: str = "alice") -> None:
        """Through the one-time link, as `dockyard dashboard` opens it."""
        link = self.server.client_of(who).dashboard_link()
        entered = self.get(link.removeprefix("http://testserver"))
        assert entered.status_code == 200, entered.text
        assert self.get("/").status_code == 200


def web(command: str = "sleep 1000", *, key: bool = False) -> dict[str, Any]:
    """`web` (public) and `db`; with `key`, web reads the config API_KEY."""
    return {"web": {"image": IMAGE, "command": ["sh", "-c", command], "ports": ["8080"],
                    "healthcheck": {"test": ["CMD", "true"]},
                    "environment": {"API_KEY": None} if key else {}},
            "db": {"image": IMAGE, "command": ["sleep", "1000"]}}


def test_the_one_time_link_opens_one_session_with_a_strict_httponly_cookie(
        server: Server) -> None:
    link = server.client_of("alice").dashboard_link()
    path = link.removeprefix("http://testserver")
    assert re.fullmatch(r"/login/[A-Za-z0-9_-]{40,}", path), link
    browser = Browser(server)
    entered = browser.get(path)
    assert entered.status_code == 200
    cookie = entered.headers["set-cookie"]
    assert cookie.startswith("dockyard_session=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert server.tokens["alice"] not in cookie  # the token never goes to the browser
    assert "Logged in as alice" in entered.text

    again = Browser(server).get(path)  # used once: a second visit gets nothing
    assert again.status_code == 401 and "set-cookie" not in again.headers
    assert "not valid" in again.text

    page = browser.get("/")
    assert page.status_code == 200 and ">alice<" in page.text


def test_a_link_needs_a_valid_token(server: Server) -> None:
    refused = server.call("POST", "/v1/dashboard/links", who=None)
    assert refused.status_code == 401
    forged = Browser(server).get("/login/" + "A" * 43)
    assert forged.status_code == 401


def test_pages_without_a_session_go_to_the_login_page_and_the_rest_is_refused(
        server: Server) -> None:
    server.up("shop", web())
    anonymous = Browser(server)
    page = anonymous.get("/projects/shop")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fprojects%2Fshop"
    stream = anonymous.http.get("/projects/shop/services/stream")
    assert stream.status_code == 401
    logs = anonymous.http.get("/projects/shop/logs/stream")
    assert logs.status_code == 401
    posted = anonymous.post("/projects/shop/configs", {"name": "API_KEY", "value": SECRET},
                            csrf="anything")
    assert posted.status_code == 401
    down = anonymous.post("/projects/shop/down", {"confirm": "shop"}, csrf="anything")
    assert down.status_code == 401
    assert server.client_of("alice").configs("shop") == []
    assert server.containers("shop")  # still up
    # A bearer token is no session: the dashboard answers only to its cookie.
    with_token = server.call("GET", "/projects/shop", headers={**HTML, **server.auth("alice")},
                             follow_redirects=False)
    assert with_token.status_code == 303


def test_a_forged_or_missing_csrf_token_is_refused_and_changes_nothing(server: Server) -> None:
    server.up("shop", web())
    browser = Browser(server)
    browser.log_in()
    browser.get("/projects/shop/configs")
    for forged in ("", "forged-" + browser.csrf[7:], Browser(server).csrf):
        refused = browser.post("/projects/shop/configs", {"name": "API_KEY", "value": SECRET},
                               csrf=forged)
        assert refused.status_code == 403, refused.text
        assert "CSRF" in refused.text
    refused = browser.post("/projects/shop/down", {"confirm": "shop"}, csrf="nope")
    assert refused.status_code == 403
    assert server.client_of("alice").configs("shop") == []
    assert set(server.containers("shop")) == {"web", "db"}

    # Another account's session token does not pass for this session's.
    bob = Browser(server)
    bob.log_in("bob")
    bob.get("/")
    crossed = browser.post("/projects/shop/configs", {"name": "API_KEY", "value": SECRET},
                           csrf=bob.csrf)
    assert crossed.status_code == 403


def test_a_request_from_another_origin_is_refused(server: Server) -> None:
    server.up("shop", web())
    browser = Browser(server)
    browser.log_in()
    browser.get("/projects/shop/configs")
    refused = browser.post("/projects/shop/configs", {"name": "API_KEY", "value": SECRET},
                           headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403
    same_site = browser.post("/projects/shop/configs", {"name": "API_KEY", "value": SECRET},
                             headers={"Origin": "http://testserver"})
    assert same_site.status_code == 303


def test_the_login_form_takes_a_token_and_checks_its_own_csrf_value(server: Server) -> None:
    browser = Browser(server)
    form = browser.get("/login?next=/projects/shop")
    assert form.status_code == 200
    value = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert value is not None
    no_pair = TestClient(server.app, base_url="http://testserver", follow_redirects=False)
    refused = no_pair.post("/login", data={"csrf": value.group(1),
                                           "token": server.tokens["alice"]})
    assert refused.status_code == 403 and "set-cookie" not in refused.headers

    wrong = browser.post("/login", {"token": "not-a-token"}, csrf=value.group(1))
    assert wrong.status_code == 401 and "not valid" in wrong.text
    assert "not-a-token" not in wrong.text

    done = browser.post("/login", {"token": server.tokens["alice"], "next": "/projects/shop"},
                        csrf=value.group(1))
    assert done.status_code == 303 and done.headers["location"] == "/projects/shop"
    assert "HttpOnly" in done.headers["set-cookie"]
    # `next` never leaves the server.
    evil = Browser(server)
    form = evil.get("/login")
    value = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert value is not None
    away = evil.post("/login", {"token": server.tokens["bob"], "next": "//evil.example/x"},
                     csrf=value.group(1))
    assert away.headers["location"] == "/"


def test_each_account_sees_only_its_own_projects(server: Server) -> None:
    server.up("alice-shop", web())
    server.up("bob-shop", web(), who="bob")
    alice, bob = Browser(server), Browser(server)
    alice.log_in("alice")
    bob.log_in("bob")
    page = alice.get("/").text
    assert "alice-shop" in page and "bob-shop" not in page
    page = bob.get("/").text
    assert "bob-shop" in page and "alice-shop" not in page
    for path in ("/projects/alice-shop", "/projects/alice-shop/deployments",
                 "/projects/alice-shop/logs", "/projects/alice-shop/configs",
                 "/projects/alice-shop/down"):
        theirs, missing = bob.get(path), bob.get(path.replace("alice-shop", "nobody-shop"))
        assert theirs.status_code == missing.status_code == 404, path
    assert bob.http.get("/projects/alice-shop/services/stream").status_code == 404
    bob.get("/projects/bob-shop")
    refused = bob.post("/projects/alice-shop/down", {"confirm": "alice-shop"})
    assert refused.status_code == 404
    assert set(server.containers("alice-shop")) == {"web", "db"}


def test_a_set_config_shows_its_name_and_time_never_its_value(server: Server) -> None:
    server.up("shop", web())
    browser = Browser(server)
    browser.log_in()
    browser.get("/projects/shop/configs")
    written = browser.post("/projects/shop/configs", {"name": "API_KEY", "value": SECRET})
    assert written.status_code == 303
    page = browser.get("/projects/shop/configs")
    assert "API_KEY" in page.text
    assert [c.name for c in server.client_of("alice").configs("shop")] == ["API_KEY"]
    _, status = server.up("shop", web("echo started with $API_KEY; sleep 1000", key=True))
    assert status == "succeeded"  # runs with it now

    # The dashboard's log stream is the API's: the same lines, the value masked in both.
    stream = browser.http.get("/projects/shop/logs/stream")
    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    server.bodies.append(stream.text)
    api = log_answer(server.client_of("alice"), "shop")
    lines = [data["line"] for kind, data in api if kind == "log"]
    assert any("API_KEY=" in line for line in lines)
    for line in lines:
        assert line.replace('"', '\\"') in stream.text or line in stream.text
    for path in ("/", "/projects/shop", "/projects/shop/deployments",
                 "/projects/shop/logs", "/projects/shop/configs"):
        assert browser.get(path).status_code == 200, path
    assert not [body for body in server.bodies if SECRET in body]

    browser.get("/projects/shop/configs")
    removed = browser.post("/projects/shop/configs/remove", {"name": "API_KEY"})
    assert removed.status_code == 303
    assert server.client_of("alice").configs("shop") == []
    bad = browser.post("/projects/shop/configs", {"name": "9bad", "value": SECRET})
    assert bad.status_code == 422 and SECRET not in bad.text


def test_a_project_page_shows_services_endpoints_and_the_live_stream(server: Server) -> None:
    deployment, status = server.up("shop", web())
    assert status == "succeeded"
    browser = Browser(server)
    browser.log_in()
    page = browser.get("/projects/shop").text
    assert 'sse-connect="/projects/shop/services/stream"' in page
    assert re.search(r'data-service="web" data-state="SERVICE_DEPLOYMENT_COMPLETED"', page)
    rows = server.client_of("alice").services("shop")
    web_row = next(r for r in rows if r.service == "web")
    assert f'href="{web_row.endpoint}"' in page and web_row.fqdn in page
    assert deployment in page
    with browser.http.stream("GET", "/projects/shop/services/stream") as stream:
        assert stream.status_code == 200
        first = ""
        for line in stream.iter_lines():
            first += line + "\n"
            if line == "" and "event: services" in first:
                break
    assert "data: " in first and "SERVICE_DEPLOYMENT_COMPLETED" in first


def test_deployments_show_their_services_and_timeline(server: Server) -> None:
    deployment, _ = server.up("shop", web())
    browser = Browser(server)
    browser.log_in()
    history = browser.get("/projects/shop/deployments").text
    assert deployment in history and "db, web" in history
    detail = browser.get(f"/projects/shop/deployments/{deployment}")
    assert detail.status_code == 200
    events, _ = follow(server.client_of("alice"), deployment)
    for event in events:
        assert event["state"] in detail.text
    assert browser.get(f"/projects/other/deployments/{deployment}").status_code == 404


def test_down_and_rollback_need_the_project_name_typed(server: Server) -> None:
    first, _ = server.up("shop", web())
    second, _ = server.up("shop", web("sleep 2000"))
    browser = Browser(server)
    browser.log_in()
    confirm = browser.get(f"/projects/shop/rollback?deployment={first}")
    assert confirm.status_code == 200
    assert "Roll project shop back" in confirm.text and first in confirm.text
    wrong = browser.post("/projects/shop/rollback", {"deployment": first, "confirm": "shoq"})
    assert wrong.status_code == 400
    assert server.store.deployments(server.accounts["alice"], "shop", limit=5)[0].id == second

    done = browser.post("/projects/shop/rollback", {"deployment": first, "confirm": "shop"})
    assert done.status_code == 303
    rollback = done.headers["location"].rsplit("/", 1)[1]
    _, end = follow(server.client_of("alice"), rollback)
    detail = server.client_of("alice").deployment(rollback)
    assert detail.action == "rollback" and detail.record.rollback_of == first
    assert detail.record.client_version.startswith("dashboard")
    assert end["status"] == "succeeded"

    browser.get("/projects/shop/down")
    assert browser.post("/projects/shop/down", {"confirm": ""}).status_code == 400
    assert set(server.containers("shop")) == {"web", "db"}
    taken = browser.post("/projects/shop/down", {"confirm": "shop"})
    assert taken.status_code == 303
    _, end = follow(server.client_of("alice"), taken.headers["location"].rsplit("/", 1)[1])
    assert end["status"] == "succeeded" and server.containers("shop") == {}


def test_logging_out_or_revoking_the_token_ends_the_session(server: Server) -> None:
    server.up("shop", web())
    browser = Browser(server)
    browser.log_in()
    assert browser.post("/logout", {}, csrf="wrong").status_code == 403
    assert browser.get("/").status_code == 200
    out = browser.post("/logout", {})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert browser.get("/").status_code == 303

    other = Browser(server)
    token = server.store.create_token(server.accounts["alice"], "dash")
    form = other.get("/login")
    value = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert value is not None
    assert other.post("/login", {"token": token}, csrf=value.group(1)).status_code == 303
    assert other.get("/").status_code == 200
    (token_id,) = [i for i, label, _ in server.store.tokens(server.accounts["alice"])
                   if label == "dash"]
    assert server.store.revoke_token(server.accounts["alice"], token_id)
    assert other.get("/").status_code == 303


def test_pages_are_guarded_by_headers_and_static_files_are_served(server: Server) -> None:
    browser = Browser(server)
    browser.log_in()
    page = browser.get("/")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    for path in ("/static/vendor/htmx.min.js", "/static/vendor/htmx-ext-sse.min.js",
                 "/static/dashboard.js", "/static/dashboard.css"):
        assert Browser(server).http.get(path).status_code == 200, path
    assert "<script>" not in page.text  # scripts come from files only (the policy)


def test_the_logs_page_filters_as_the_cli_does(server: Server) -> None:
    server.up("shop", web())
    browser = Browser(server)
    browser.log_in()
    page = browser.get("/projects/shop/logs?service=web&filter=HELLO")
    assert 'data-src="/projects/shop/logs/stream?follow=true&amp;type=all&amp;service=web' \
           '&amp;filter=HELLO"' in page.text
    stream = browser.http.get("/projects/shop/logs/stream",
                              params={"service": "web", "filter": "HELLO"})
    lines = [line for line in stream.text.splitlines() if line.startswith('data: {"service"')]
    assert lines and all('"line": "hello from ' in line for line in lines)
    assert all('"service": "web"' in line for line in lines)
    everything = browser.http.get("/projects/shop/logs/stream", params={"service": "web"})
    assert everything.text.count('data: {"service"') > len(lines)  # the filter left some out


def test_the_services_stream_ends_once_the_token_is_revoked(server: Server) -> None:
    server.up("shop", web())
    token = server.store.create_token(server.accounts["alice"], "dash")
    browser = Browser(server)
    form = browser.get("/login")
    value = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert value is not None
    assert browser.post("/login", {"token": token}, csrf=value.group(1)).status_code == 303
    with browser.http.stream("GET", "/projects/shop/services/stream") as stream:
        events = 0
        for line in stream.iter_lines():
            if line == "event: services":
                events += 1
                (token_id,) = [i for i, label, _ in server.store.tokens(server.accounts["alice"])
                               if label == "dash"]
                server.store.revoke_token(server.accounts["alice"], token_id)
                server.control.notify()  # wake the stream now rather than at its next refresh
    assert events == 1  # the stream ended by itself, after its first table


# Without a session: what each of the dashboard's routes may answer. The login pages and the
# static files are for everyone; every other route refuses (a page by going to the login page).
OPEN = {("GET", "/login"), ("POST", "/login"), ("GET", "/login/{code}"),
        ("GET", "/static/{name:path}")}


def test_every_dashboard_route_refuses_a_request_without_a_session(server: Server) -> None:
    deployment, _ = server.up("shop", web())
    routes = [(method, route.path) for route in server.app.routes
              if isinstance(route, APIRoute) and dashboard.serves(route.path)
              for method in sorted(route.methods or ())]
    assert len(routes) >= 15 and OPEN <= set(routes)
    values = {"project": "shop", "deployment": deployment}
    bearer = server.auth("alice")  # a token is no session
    for method, path in sorted(set(routes) - OPEN):
        url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
        accept = {"Accept": "text/event-stream"} if path.endswith("/stream") else HTML
        for headers in ({}, bearer):
            answer = server.client.request(method, url, headers={**accept, **headers},
                                           data={"csrf": "x", "confirm": "shop"},
                                           follow_redirects=False)
            if method == "GET" and not path.endswith("/stream"):
                assert answer.status_code == 303, (method, path)
                assert answer.headers["location"].startswith("/login?next=")
            else:
                assert answer.status_code == 401, (method, path, answer.text)
    assert set(server.containers("shop")) == {"web", "db"}
    assert server.client_of("alice").configs("shop") == []


def test_a_failed_service_shows_its_state_and_reason(server: Server) -> None:
    _, status = server.up("shop", {"web": {"image": IMAGE, "command": ["sh", "-c", "crash"]}})
    assert status == "failed"
    (row,) = server.client_of("alice").services("shop")
    assert row.state == "SERVICE_DEPLOYMENT_FAILED" and row.reason
    browser = Browser(server)
    browser.log_in()
    page = browser.get("/projects/shop").text
    assert 'data-state="SERVICE_DEPLOYMENT_FAILED"' in page
    assert f'<div class="reason bad">{html.escape(row.reason, quote=False)}</div>' in page
    projects = browser.get("/").text
    assert "1 SERVICE_DEPLOYMENT_FAILED" in projects and "up failed" in projects
