"""`dockyard dashboard` (the CLI in-process against an in-process server): `--url` prints a
one-time login link that opens a session once; without it the link goes to the browser, or is
printed when no browser opens."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dockyard.cli.main import main
from dockyard.client import api
from dockyard.exit_codes import ExitCode
from tests.support.server import running_server


def visit(client: TestClient, link: str) -> int:
    response = client.get(link.removeprefix("http://testserver"), follow_redirects=False)
    return int(response.status_code)


def test_the_url_is_a_link_that_logs_in_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with running_server(tmp_path) as server:
        monkeypatch.setattr(api, "connect", lambda *_a, **_k: server.client_of("alice"))
        assert main(["dashboard", "--url"]) == ExitCode.OK
        captured = capsys.readouterr()
        link = captured.out.strip()
        assert link.startswith("http://testserver/login/") and "\n" not in link
        assert server.tokens["alice"] not in captured.out + captured.err
        browser = TestClient(server.app, base_url="http://testserver")
        assert visit(browser, link) == 200
        assert browser.get("/", headers={"Accept": "text/html"}).text.count(">alice<") == 1
        assert visit(TestClient(server.app, base_url="http://testserver"), link) == 401


def test_the_link_opens_in_a_browser_or_is_printed(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    opened: list[str] = []
    with running_server(tmp_path) as server:
        monkeypatch.setattr(api, "connect", lambda *_a, **_k: server.client_of("alice"))
        def browse(url: str) -> bool:
            opened.append(url)
            return True

        monkeypatch.setattr(webbrowser, "open", browse)
        assert main(["dashboard"]) == ExitCode.OK
        captured = capsys.readouterr()
        assert len(opened) == 1 and opened[0].startswith("http://testserver/login/")
        assert captured.out == "" and "opened the dashboard" in captured.err

        monkeypatch.setattr(webbrowser, "open", lambda url: False)
        assert main(["dashboard"]) == ExitCode.OK
        captured = capsys.readouterr()
        assert captured.out.strip().startswith("http://testserver/login/")
        assert "no browser could be opened" in captured.err
