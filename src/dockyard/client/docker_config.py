"""One registry's login, read from the user's Docker config for `registry login
--from-docker-config`, as `docker` itself reads it.

Only the entry of the host asked for is used: `credHelpers[host]`, else `credsStore` (both run
`docker-credential-<helper> get` with the server URL on standard input, as docker does), else
`auths[host].auth` (base64 of `user:password`). Nothing else of the file is read beyond what
`json.load` does, and nothing is sent anywhere here: the caller uploads the one login it gets.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dockyard.errors import DockyardError
from dockyard.registry.reference import auth_server_address, normalize_host

HELPER_TIMEOUT = 30  # seconds a credential helper may take (it may ask the user to unlock)
IDENTITY_TOKEN_USER = "<token>"  # how helpers say the secret is an identity token


class DockerConfigError(DockyardError):
    """The Docker config has no usable login for the host, or cannot be read."""


def docker_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` (docker's own rule)."""
    env = os.environ if environ is None else environ
    directory = env.get("DOCKER_CONFIG")
    return (Path(directory) if directory else Path.home() / ".docker") / "config.json"


def login_from_docker_config(host: str, path: Path) -> tuple[str, str]:
    """(username, password) of `host` (as `normalize_host` gives it) in the config at `path`."""
    config = _load(path)
    helper_key, helper = _matching(config.get("credHelpers"), host)
    if helper is None and isinstance(config.get("credsStore"), str) and config["credsStore"]:
        helper = config["credsStore"]
    auth_key, entry = _matching(config.get("auths"), host)
    if isinstance(helper, str) and helper:
        server = helper_key or auth_key or auth_server_address(host)
        return _from_helper(helper, server, host, path)
    if entry is None:
        raise DockerConfigError(
            f"the Docker config {path} has no login for {host}",
            hint=f"run `docker login {host}` first, or log in here with `dockyard registry "
            f"login {host} -u USER`")
    return _from_auths(entry, host, path)


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as handle:
            config = json.load(handle)
    except FileNotFoundError:
        raise DockerConfigError(f"there is no Docker config at {path}",
                                hint="set DOCKER_CONFIG to the directory of your config.json, "
                                "or log in with -u USER") from None
    except OSError as exc:
        raise DockerConfigError(f"the Docker config {path} cannot be read: {exc.strerror}",
                                hint="check its owner and mode") from None
    except (ValueError, UnicodeDecodeError):  # json.JSONDecodeError is a ValueError
        raise DockerConfigError(f"the Docker config {path} is not valid JSON",
                                hint="check the file (docker itself reads it the same way)"
                                ) from None
    if not isinstance(config, dict):
        raise DockerConfigError(f"the Docker config {path} is not a JSON object")
    return config


def _matching(table: object, host: str) -> tuple[str | None, Any]:
    """The key of `table` naming `host` (in any spelling docker writes), and its value; only
    keys are looked at until one matches."""
    if not isinstance(table, dict):
        return None, None
    for key in table:
        try:
            if isinstance(key, str) and normalize_host(key) == host:
                return key, table[key]
        except ValueError:
            continue
    return None, None


def _from_auths(entry: object, host: str, path: Path) -> tuple[str, str]:
    where = f"the login for {host} in the Docker config {path}"
    if not isinstance(entry, dict):
        raise DockerConfigError(f"{where} is not a JSON object")
    if entry.get("identitytoken"):
        raise DockerConfigError(
            f"{where} is an identity token (an OAuth login), which Dockyard does not support",
            hint=f"log in with a user name and password or access token: `dockyard registry "
            f"login {host} -u USER --password-stdin`")
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise DockerConfigError(f"{where} is not valid base64 of USER:PASSWORD") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise DockerConfigError(f"{where} is not valid base64 of USER:PASSWORD")
        return username, password
    plain_user, plain_password = entry.get("username"), entry.get("password")
    if isinstance(plain_user, str) and isinstance(plain_password, str) and plain_user and \
            plain_password:
        return plain_user, plain_password  # an older docker's plain fields
    raise DockerConfigError(f"{where} holds no credentials",
                            hint=f"run `docker login {host}` again, or log in with -u USER")


def _from_helper(helper: str, server: str, host: str, path: Path) -> tuple[str, str]:
    program = f"docker-credential-{helper}"
    try:
        done = subprocess.run([program, "get"], input=server, capture_output=True, text=True,
                              timeout=HELPER_TIMEOUT, check=False)
    except FileNotFoundError:
        raise DockerConfigError(
            f"the Docker config {path} keeps the login for {host} with the credential helper "
            f"{helper!r}, but {program} is not installed here",
            hint=f"install {program}, or log in with `dockyard registry login {host} -u USER`"
            ) from None
    except subprocess.TimeoutExpired:
        raise DockerConfigError(f"{program} did not answer within {HELPER_TIMEOUT} s",
                                hint="unlock your keychain, then try again") from None
    if done.returncode != 0:
        said = " ".join((done.stdout or done.stderr).split())[:200]
        raise DockerConfigError(
            f"{program} has no login for {server}" + (f": {said}" if said else ""),
            hint=f"run `docker login {host}` first, or log in with -u USER")
    try:
        answer = json.loads(done.stdout)
        username, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError):
        raise DockerConfigError(f"{program} answered something other than a login",
                                hint="check the helper with `docker login`") from None
    if username == IDENTITY_TOKEN_USER:
        raise DockerConfigError(
            f"{program} keeps an identity token (an OAuth login) for {host}, which Dockyard "
            "does not support",
            hint=f"log in with a user name and password or access token: `dockyard registry "
            f"login {host} -u USER --password-stdin`")
    if not username or not secret:
        raise DockerConfigError(f"{program} has no login for {server}",
                                hint=f"run `docker login {host}` first, or log in with -u USER")
    return username, secret
