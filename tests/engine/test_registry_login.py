"""`dockyard registry login` against a real htpasswd registry (Debian's docker-registry) through
a real server and engine: a wrong password is refused with a clear message, the right one is
kept (encrypted) and listed, and the password shows nowhere (marked `docker`).

The engine's `POST /auth` is what checks a login; the driver calls it directly, so docker-py's
client never caches one account's credentials for another's pulls (checked here too).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from dockyard.runtime.docker_engine import DockerEngine
from dockyard.runtime.errors import RegistryLoginFailed
from tests.engine.registry import Registry, auth_registry, free_port
from tests.files import file_contents
from tests.support.deployments import DOCKYARD, Dockyard, Result, cli_env, dockyard
from tests.support.engine import engine_ready

__all__ = ["auth_registry", "dockyard"]  # the fixtures used here

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
]


def credentials(reg: Registry) -> tuple[str, str]:
    assert reg.username is not None and reg.password is not None
    return reg.username, reg.password


def test_the_driver_checks_a_login_without_caching_it(auth_registry: Registry) -> None:
    username, password = credentials(auth_registry)
    engine = DockerEngine()
    try:
        with pytest.raises(RegistryLoginFailed) as refused:
            engine.check_login(auth_registry.host, username, "wrong-" + password)
        assert refused.value.denied and "401" in refused.value.reason
        assert password not in str(refused.value)
        engine.check_login(auth_registry.host, username, password)
        with pytest.raises(RegistryLoginFailed) as down:
            engine.check_login(f"127.0.0.1:{free_port()}", username, password)
        assert not down.value.denied and "connection refused" in down.value.reason
        # docker-py's own login() would have kept it for every later request of this client
        assert not getattr(engine.client.api, "_auth_configs", {}).get("auths")
    finally:
        engine.close()


def login(dockyard: Dockyard, host: str, username: str, password: str) -> Result:
    """`dockyard registry login HOST -u USER --password-stdin`, the password piped in."""
    proc = subprocess.run([str(DOCKYARD), "registry", "login", host, "-u", username,
                           "--password-stdin"], input=password + "\n",
                          env=cli_env(dockyard.home, dockyard.user, dockyard.env),
                          cwd=dockyard.home.parent, capture_output=True, text=True, timeout=120,
                          check=False)
    dockyard.server()  # the server the command started is stopped at teardown
    return Result(proc.returncode, proc.stdout, proc.stderr)


def test_registry_login_refuses_a_wrong_password_then_keeps_the_right_one(
        dockyard: Dockyard, auth_registry: Registry) -> None:
    username, password = credentials(auth_registry)
    host = auth_registry.host
    wrong = login(dockyard, host, username, "wrong-" + password)
    assert wrong.code == 1 and wrong.out == "", str(wrong)
    assert f"error: registry {host} refused the login of user {username!r}" in wrong.err
    assert "401 Unauthorized" in wrong.err and "hint:" in wrong.err
    assert "Traceback" not in wrong.err and password not in wrong.err

    empty = dockyard.cli("registry", "ls", "--json")
    assert empty.code == 0 and json.loads(empty.out) == [], str(empty)

    right = login(dockyard, host, username, password)
    assert right.code == 0 and right.out == "Login Succeeded\n", str(right)

    listed = dockyard.cli("registry", "ls")
    assert listed.code == 0, str(listed)
    assert listed.out.splitlines()[1].split()[:2] == [host, username]
    as_json = dockyard.cli("registry", "ls", "--json")
    (item,) = json.loads(as_json.out)
    assert (item["host"], item["username"]) == (host, username)
    for said in (right, listed, as_json):
        assert password not in said.out + said.err
    for path, content in file_contents(dockyard.home):  # the store, the server's log ...
        assert password.encode() not in content, f"the password is in {path}"

    out = dockyard.cli("registry", "logout", host)
    assert (out.code, out.out) == (0, f"Removing login credentials for {host}\n"), str(out)
    assert json.loads(dockyard.cli("registry", "ls", "--json").out) == []
