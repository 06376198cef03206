"""The web dashboard in a real browser (Debian's headless chromium, through chromium-driver)
against a real server, Docker Engine and ingress.

- The example deployed with the CLI: its states reach SERVICE_DEPLOYMENT_COMPLETED on the
  project page without a reload, and a second deployment (`up --force`) shows its states
  changing there too; an endpoint link answers through the ingress; a build log reads as
  `dockyard logs --type build` prints it. The page fits a phone's width, in dark mode too.
- A config set on the page: its value is in no page's HTML, and the logs page masks it in a
  line whose ANSI colour it renders. A forged CSRF token or no session is refused; rollback
  and down go through their confirmation pages.
- Two accounts of a playground server, each logged in with its token, see only their own
  projects.

Screenshots are kept under each test's temporary directory (`screenshots/`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import BROWSER_MARKS, Browser, browser
from tests.support.deployments import (
    COMPLETED,
    Dockyard,
    edit,
    eventually,
    free_port,
)
from tests.support.engine import EXAMPLE
from tests.support.ingress import PROXY_MARKS
from tests.support.tenants import (
    User,
    remove_server_objects,
    start_server,
    stop_server,
)

pytestmark = [*PROXY_MARKS, *BROWSER_MARKS]

__all__ = ["browser"]  # the fixture

SECRET = "dashboard-canary-7d41b2"
ROWS = ("return Array.from(document.querySelectorAll('#services tr[data-service]'))"
        ".map(r => [r.dataset.service, r.dataset.state, r.dataset.deployment]);")


def projects(dy: Dockyard) -> list[str]:
    """The local server's projects, [] while it is not up yet."""
    try:
        return [str(p["name"]) for p in dy.api("/v1/projects")]
    except (AssertionError, httpx.HTTPError, OSError, ValueError):
        return []


def log_in(dy: Dockyard, page: Browser) -> str:
    """Open `dockyard dashboard --url`'s one-time link; the server's base URL."""
    result = dy.cli("dashboard", "--url")
    assert result.code == 0, str(result)
    link = result.out.strip()
    page.get(link)
    page.wait(lambda: page.path == "/", "the login link to lead to the projects page")
    return link.split("/login/")[0]


def rows(page: Browser) -> dict[str, tuple[str, str]]:
    """service -> (state, deployment), read from the page at once."""
    found: list[list[str]] = page.driver.execute_script(ROWS)
    return {service: (state, deployment) for service, state, deployment in found}


def example(tmp_path: Path) -> Path:
    """The example, with its host port moved to a free one (tests may run side by side)."""
    target = tmp_path / "shop"
    shutil.copytree(EXAMPLE, target)
    edit(target / "compose.yaml", "published: 9100", f"published: {free_port()}")
    return target


def test_the_example_deployed_with_the_cli_goes_live_on_the_page(
        dockyard: Dockyard, browser: Browser, tmp_path: Path) -> None:
    shop, name = example(tmp_path), dockyard.name("dash")
    up = dockyard.background("compose", "up", "-C", str(shop), "-p", name, "--json",
                             output=tmp_path / "up.log")
    try:
        eventually(lambda: name in projects(dockyard), f"project {name} to be recorded", 120)
        base = log_in(dockyard, browser)
        browser.find(f'a[href="/projects/{name}"]').click()
        browser.wait(lambda: browser.path == f"/projects/{name}", "the project page")
        browser.driver.execute_script("window.dockyardMarker = 'not reloaded';")
        browser.shot("project-deploying")

        def completed(count: int, apart_from: str = "") -> dict[str, tuple[str, str]] | None:
            found = rows(browser)
            seen.update(state for state, _ in found.values())
            done = len(found) == count and all(
                state == COMPLETED and deployment != apart_from
                for state, deployment in found.values())
            return found if done else None

        seen: set[str] = set()
        first = browser.wait(lambda: completed(5), "every service to complete", 300)
        assert up.wait(timeout=120) == 0, (tmp_path / "up.log").read_text()
    finally:
        if up.poll() is None:
            up.kill()
    assert set(first) == {"api", "db", "metrics", "migrate", "web"}
    (deployment,) = {d for _, d in first.values()}
    browser.shot("project-completed")

    # A second deployment from the CLI: its states change on the open page, no reload.
    seen.clear()
    again = dockyard.up(shop, name, "--force", "-d")
    assert again.code == 0, str(again)
    second = browser.wait(lambda: completed(5, apart_from=deployment),
                          "the second deployment's services to complete", 300)
    assert {d for _, d in second.values()} == {again.deployment}
    assert seen - {COMPLETED}, f"no state but {COMPLETED} was seen: {seen}"
    assert browser.driver.execute_script("return window.dockyardMarker;") == "not reloaded"

    # The services' facts are those of `ps`, and an endpoint link answers.
    ps = dockyard.ps(name)
    html = browser.html
    for service, row in ps.items():
        assert row["fqdn"] in html, service
    assert "2/2 healthy" in browser.find('tr[data-service="api"] td.health').text
    link = browser.find('tr[data-service="web"] a.endpoint')
    assert link.get_attribute("href") == ps["web"]["endpoint"] + "/"
    link.click()
    browser.wait(lambda: "Dockyard shop" in browser.html, "the web endpoint to answer")
    browser.shot("endpoint")
    browser.driver.back()

    # A build log, as `dockyard logs web --type build` prints it.
    browser.get(f"{base}/projects/{name}/logs?type=build&service=web")
    browser.wait(lambda: browser.find("#log").get_attribute("data-live") == "ended",
                 "the build log to end")
    page_lines = [e.text for e in browser.all("#log .line.build")]
    assert page_lines, browser.html
    assert all(line.startswith("web (build) | ") for line in page_lines)
    cli = dockyard.cli("logs", "web", "--type", "build", "-p", name)
    assert cli.code == 0, str(cli)
    expected = [line.split("| ", 1)[1] for line in cli.out.splitlines() if "| " in line]
    assert [line.split("| ", 1)[1] for line in page_lines] == expected
    browser.shot("build-log")

    # How long each page takes to load, kept as an artifact (docs/dashboard.md quotes it; not
    # asserted: a test never asserts wall-clock times).
    timings = {}
    for path in ("/", f"/projects/{name}", f"/projects/{name}/deployments",
                 f"/projects/{name}/deployments/{deployment}", f"/projects/{name}/logs",
                 f"/projects/{name}/configs"):
        browser.get(base + path)
        timings[path] = browser.driver.execute_script(
            "const n = performance.getEntriesByType('navigation')[0];"
            "return {response: n.responseEnd - n.requestStart,"
            " loaded: n.loadEventEnd - n.startTime};")
    (tmp_path / "timings.json").write_text(json.dumps(timings, indent=2))

    # Readable on a phone's width, and in dark mode.
    browser.get(f"{base}/projects/{name}")
    browser.driver.set_window_size(390, 844)
    browser.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    browser.wait(lambda: len(rows(browser)) == 5, "the services on a phone's width")
    overflow = browser.driver.execute_script(
        "return document.documentElement.scrollWidth - window.innerWidth;")
    assert overflow <= 0, f"the page is {overflow}px wider than a phone's screen"
    background = browser.driver.execute_script(
        "return getComputedStyle(document.body).backgroundColor;")
    red, green, blue = (int(x) for x in background[background.index("(") + 1:-1].split(",")[:3])
    assert red + green + blue < 150, f"not dark: {background}"
    browser.shot("phone-dark")


SMALL = """\
services:
  web:
    image: dockyard/busybox:1
    command: ["sh", "-c", "COMMAND"]
    stop_grace_period: 1s
"""


def small_project(tmp_path: Path, command: str, *, key: bool) -> Path:
    directory = tmp_path / "small"
    directory.mkdir(exist_ok=True)
    text = SMALL.replace("COMMAND", command)
    if key:
        text += "    environment:\n      API_KEY:\n"
    (directory / "compose.yaml").write_text(text)
    return directory


def fetch_status(page: Browser, path: str, body: str) -> int:
    """The status of a form POST sent by the page's own script (same origin, its cookies)."""
    status: int = page.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {method: 'POST', body: arguments[1], redirect: 'manual',"
        " headers: {'Content-Type': 'application/x-www-form-urlencoded'}})"
        ".then(r => done(r.status), () => done(-1));", path, body)
    return status


def confirmed(dy: Dockyard, page: Browser, project: str, question: str, action: str) -> str:
    """Confirm an action on its page (the project's name typed in); the deployment it
    started, once it succeeded."""
    page.wait(lambda: page.all("#confirm"), f"the {action}'s confirmation")
    assert question in page.html
    page.shot(f"confirm-{action}")
    page.find("#confirm").send_keys(project)
    page.find("#confirm-submit").click()
    started: str = page.wait(lambda: page.path.rsplit("/", 1)[1]
                             if "/deployments/" in page.path else None, f"the {action}'s page")
    eventually(lambda: dy.api(f"/v1/deployments/{started}")["status"] == "succeeded",
               f"the {action} to succeed", 120)
    return started


def test_configs_logs_and_actions_keep_the_value_and_check_every_request(
        dockyard: Dockyard, browser: Browser, tmp_path: Path) -> None:
    name = dockyard.name("cfg")
    first = dockyard.up(small_project(tmp_path, "echo first; exec sleep 1000", key=False), name)
    assert first.code == 0, str(first)
    base = log_in(dockyard, browser)
    pages: list[str] = []

    # Set a config on the page: its name and time show, its value nowhere.
    browser.get(f"{base}/projects/{name}/configs")
    browser.find("#config-name").send_keys("API_KEY")
    browser.find("#config-value").send_keys(SECRET)
    browser.find("#config-submit").click()
    browser.wait(lambda: browser.all('tr[data-config="API_KEY"]'), "the config to be listed")
    pages.append(browser.html)
    browser.shot("configs")
    listed = dockyard.cli("config", "ls", "-p", name, "--json")
    assert listed.code == 0 and "API_KEY" in listed.out, str(listed)

    # A deployment that prints it, in colour: the logs page renders the colour, masks the value.
    printing = ("printf '\\\\033[32mready\\\\033[0m with API_KEY=%s\\\\n' \\\"$$API_KEY\\\"; "
                "exec sleep 1000")
    second = dockyard.up(small_project(tmp_path, printing, key=True), name)
    assert second.code == 0, str(second)
    browser.get(f"{base}/projects/{name}/logs?service=web")
    line = browser.wait(lambda: [e for e in browser.all("#log .line")
                                 if "with API_KEY=" in e.text], "the coloured line", 60)[0]
    green = line.find_element("css selector", "span.a-32")
    assert green.text == "ready"
    assert SECRET not in line.text
    pages.append(browser.html)
    browser.shot("logs")
    for path in ("/", f"/projects/{name}", f"/projects/{name}/deployments",
                 f"/projects/{name}/deployments/{second.deployment}"):
        browser.get(base + path)
        pages.append(browser.html)
    assert not [html for html in pages if SECRET in html]

    # A forged CSRF token is refused, and changes nothing.
    browser.get(f"{base}/projects/{name}/configs")
    browser.driver.execute_script(
        "document.querySelector('#config-set input[name=csrf]').value = 'forged';")
    browser.find("#config-name").send_keys("OTHER")
    browser.find("#config-value").send_keys("x")
    browser.find("#config-submit").click()
    browser.wait(lambda: "CSRF" in browser.html, "the refusal")
    browser.shot("csrf-refused")
    assert fetch_status(browser, f"/projects/{name}/down", f"confirm={name}&csrf=forged") == 403
    assert "OTHER" not in dockyard.cli("config", "ls", "-p", name).out

    # Roll back to the first deployment, through its confirmation page.
    browser.get(f"{base}/projects/{name}/deployments")
    browser.find(f'a[href="/projects/{name}/rollback?deployment={first.deployment}"]').click()
    rollback = confirmed(dockyard, browser, name, f"Roll project {name} back", "rollback")
    detail = dockyard.api(f"/v1/deployments/{rollback}")
    assert detail["action"] == "rollback" and detail["record"]["rollback_of"] == first.deployment
    browser.get(f"{base}/projects/{name}/deployments/{rollback}")
    timeline = [e.text for e in browser.all("#timeline li")]
    assert any(COMPLETED in line for line in timeline), timeline
    browser.shot("deployment")
    browser.get(f"{base}/projects/{name}/deployments")
    assert [r.get_attribute("data-deployment") for r in browser.all("tr[data-deployment]")] \
        == [rollback, second.deployment, first.deployment]
    browser.shot("deployments")

    # Down, through its confirmation page; nothing is left running.
    browser.get(f"{base}/projects/{name}")
    browser.find("#down-link").click()
    confirmed(dockyard, browser, name, f"Take project {name} down?", "down")
    assert dockyard.ps(name) == {}

    # Without a session: pages go to the login page, requests are refused.
    browser.driver.delete_all_cookies()
    browser.get(f"{base}/projects/{name}")
    assert browser.path.startswith("/login?next=")
    assert fetch_status(browser, f"/projects/{name}/configs", "name=X&value=y&csrf=z") == 401
    browser.shot("no-session")


PLAYGROUND_PROJECT = """\
services:
  app:
    image: dockyard/busybox:1
    command: ["sleep", "1000"]
    stop_grace_period: 1s
"""


@pytest.fixture
def playground(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A playground server with accounts alice and bob, and a project directory for each."""
    root = tmp_path / "playground"
    root.mkdir()
    data, log, port = root / "server", root / "server.log", free_port()
    process = start_server(root, port, data, log)
    url = f"http://127.0.0.1:{port}"
    server_id = ""
    try:
        def healthy() -> bool:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                return httpx.get(url + "/v1/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        eventually(healthy, "the playground server", 60)
        server_id = (data / "server-id").read_text().strip()
        transcript: list[str] = []
        operator = User("operator", root / "operator", url, transcript)
        users = {name: User(name, root / name, url, transcript) for name in ("alice", "bob")}
        found: dict[str, Any] = {"url": url, "users": users}
        for name, user in users.items():
            added = operator.cli("server", "accounts", "add", name, "--data", str(data))
            assert added.code == 0, str(added)
            user.token = added.out.strip().splitlines()[-1]
            directory = root / f"{name}-project"
            directory.mkdir()
            (directory / "compose.yaml").write_text(PLAYGROUND_PROJECT)
            found[name] = directory
        yield found
    finally:
        stop_server(process)
        if server_id:
            remove_server_objects(server_id, ("alice", "bob"))


def up_as(user: User, directory: Path, project: str) -> None:
    result = user.cli("login", "--server", user.url, stdin=user.token + "\n")
    assert result.code == 0, str(result)
    deployed = user.remote("compose", "up", "-C", str(directory), "-p", project, "--json")
    assert deployed.code == 0, str(deployed)


def test_two_accounts_of_a_playground_server_see_only_their_own_projects(
        playground: dict[str, Any], browser: Browser) -> None:
    url, users = playground["url"], playground["users"]
    for name, user in users.items():
        up_as(user, playground[name], f"{name}-dash")
    for name, user in users.items():
        other = "bob" if name == "alice" else "alice"
        browser.get(f"{url}/login")
        browser.find("#token").send_keys(user.token)
        browser.find("#login").click()
        browser.wait(lambda: browser.path == "/", f"{name}'s projects page")
        html = browser.html
        assert f'data-project="{name}-dash"' in html
        assert f"{other}-dash" not in html
        assert f">{name}<" in html
        browser.shot(f"projects-{name}")
        browser.get(f"{url}/projects/{other}-dash")
        theirs = browser.html
        browser.get(f"{url}/projects/nobody-dash")
        missing = browser.html
        assert "not found" in theirs
        assert theirs.replace(f"{other}-dash", "X") == missing.replace("nobody-dash", "X")
        browser.get(f"{url}/projects/{name}-dash")
        assert browser.all('tr[data-service="app"]')
        browser.find("form[action='/logout'] button").click()
        browser.wait(lambda: browser.path.startswith("/login"), "the login page")
