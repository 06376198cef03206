"""docs/compose-support.md is `dockyard.compose.support` written out, and the table is true to
the code: every key of the schema has its row, ignored keys warn with why and what to do
instead, and every key the runtime or the server reads from a service is marked honoured.

Run `pytest tests/unit/test_compose_support.py --regen` to rewrite the generated part of the
page after changing the table.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dockyard.compose import LoadOptions, load_project
from dockyard.compose.schema import DEPLOY, SERVICE
from dockyard.compose.support import DEPLOY_KEYS, REFUSED, SERVICE_KEYS, KeySupport, Status

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "compose-support.md"
BEGIN = "<!-- generated from dockyard.compose.support: edit the table there, then run " \
        "pytest tests/unit/test_compose_support.py --regen -->"
END = "<!-- end of the generated part -->"


def _rows(table: dict[str, KeySupport], prefix: str = "") -> list[str]:
    rows = ["| key | status | what a deployment does, or why not | instead |",
            "|---|---|---|---|"]
    for key in sorted(table):
        item = table[key]
        rows.append(f"| `{prefix}{key}` | {item.status.value} | {item.why} | "
                    f"{item.instead or ''} |")
    return rows


def generated() -> str:
    lines = [BEGIN, "", "## Service keys", "", *_rows(SERVICE_KEYS), "", "## `deploy` keys",
             "", *_rows(DEPLOY_KEYS, "deploy."), "", "## Refused", "", "| code | what |",
             "|---|---|", *(f"| {code} | {what} |" for code, what in REFUSED), "", END]
    return "\n".join(lines)


def test_the_page_is_the_table(regen: bool) -> None:
    text = PAGE.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    if regen:
        PAGE.write_text(text[:start] + generated() + text[end:])
        text = PAGE.read_text()
        end = text.index(END) + len(END)
    assert text[start:end] == generated(), "run pytest tests/unit/test_compose_support.py --regen"


def test_every_key_of_the_schema_has_its_row() -> None:
    assert set(SERVICE_KEYS) == set(SERVICE.props)
    assert set(DEPLOY_KEYS) == set(DEPLOY.props)
    for item in (*SERVICE_KEYS.values(), *DEPLOY_KEYS.values()):
        assert item.why
        assert bool(item.instead) == (item.status is Status.IGNORED)


def test_keys_the_runtime_and_the_server_read_are_honoured() -> None:
    src = ROOT / "src" / "dockyard"
    code = "\n".join(p.read_text() for folder in ("runtime", "server")
                     for p in sorted((src / folder).rglob("*.py")))
    read = set(re.findall(r'extra(?:\.get\(|\[)"([a-z_]+)"', code))
    assert read, "the scan found no keys"
    for key in read:
        support = SERVICE_KEYS.get(key) or DEPLOY_KEYS[key]  # service.deploy.extra too
        assert support.status is Status.HONOURED, (
            f"`{key}` is applied by the runtime or the server: mark it honoured (saying how) in "
            "dockyard.compose.support, then run pytest tests/unit/test_compose_support.py "
            "--regen to rewrite docs/compose-support.md")
    for field in ("stop_grace_period", "healthcheck", "hostname", "domainname", "user",
                  "working_dir", "command", "entrypoint", "ports", "volumes", "labels"):
        assert SERVICE_KEYS[field].status is Status.HONOURED


@pytest.mark.parametrize("key", sorted(k for k, v in SERVICE_KEYS.items()
                                       if v.status is Status.IGNORED))
def test_an_ignored_key_warns_why_and_what_to_do(tmp_path: Path, key: str) -> None:
    values = {"cap_add": "[NET_ADMIN]", "devices": "['/dev/fuse']", "links": "[db]",
              "network_mode": "host", "volumes_from": "[db]", "ipc": "host", "pid": "host",
              "uts": "host", "cgroup": "host", "models": "[m]",
              "provider": "{type: model, options: {model: ai/x}}",
              "develop": "{watch: [{path: ., action: rebuild}]}", "gpus": "all",
              "post_start": "[{command: 'true'}]", "pre_stop": "[{command: 'true'}]",
              "configs": "[c]", "credential_spec": "{file: x}", "ulimits": "{nofile: 10}",
              "sysctls": "{net.core.somaxconn: 1024}", "blkio_config": "{weight: 300}",
              "annotations": "{a: b}", "attach": "false", "privileged": "true",
              "use_api_socket": "true", "oom_kill_disable": "true",
              "storage_opt": "{size: 1G}", **dict.fromkeys((
                  "device_cgroup_rules", "dns_opt", "external_links", "group_add",
                  "security_opt"), "['x']")}
    value = values.get(key, "'1'")
    (tmp_path / "compose.yaml").write_text(
        f"services:\n  app:\n    image: busybox:1\n    {key}: {value}\n"
        "  db:\n    image: busybox:1\n"
        "models:\n  m: {model: ai/x}\nconfigs:\n  c: {content: x}\n")
    result = load_project(LoadOptions(working_dir=str(tmp_path), environ={}))
    warned = [d for d in result.warnings if d.code == "ignored-key"
              and d.location.path == f"services.app.{key}"]
    assert len(warned) == 1, [str(d.message) for d in result.warnings]
    assert "is ignored" in warned[0].message and SERVICE_KEYS[key].why in warned[0].message
    assert warned[0].hint == SERVICE_KEYS[key].instead
    assert warned[0].location.line == 4
