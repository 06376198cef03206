"""Registry pulls on a shared (playground) server, over the API (fake engine and registry):
each account pulls with its own access, asked again at every use whatever the engine's cache
holds, and the service runs the image pinned by digest. The engine-level counterpart, with a
real htpasswd registry, is `tests/engine/test_registry_tenants.py`.

The fake registry (`tests.fakes.FakeDriver`) knows one user per private host; `two_users`
teaches it a second one, so that alice and bob each hold their own valid login.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from dockyard.runtime.driver import PullMessage, StreamStop
from tests.support.images import alices_app, build_up
from tests.support.pulls import (
    HOST,
    REF,
    SECRET_ID,
    USERS,
    login,
    pinned,
    refused,
    two_users,
    up,
    with_playground,
)
from tests.support.server import IMAGE, Server


@pytest.fixture
def playground(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """Tenant pulls on (the default); REF is served privately to alice and bob."""
    with with_playground(tmp_path) as running:
        two_users(running.driver, monkeypatch, HOST, USERS)
        running.driver.remote[REF] = SECRET_ID
        yield running


# == Each account with its own access ============================================================
def test_each_account_pulls_with_its_own_access_and_is_asked_at_every_use(
        playground: Server) -> None:
    driver = playground.driver
    login(playground, "alice")
    events, status = up(playground, "shop", {"web": {"image": REF}})
    assert status == "succeeded", events
    assert playground.spec_of("shop", "web").image == pinned(REF, SECRET_ID)
    assert driver.checks == [(REF, "alice")]
    assert driver.pulls == [(pinned(REF, SECRET_ID), "alice")]
    assert REF not in driver.images  # never a tag in the engine's one namespace

    # bob, without a login: refused by the registry's answer, though the engine holds it.
    pulls, checks = len(driver.pulls), len(driver.checks)
    for service in ({"image": REF}, {"image": REF, "pull_policy": "never"},
                    {"image": pinned(REF, SECRET_ID)}):
        problem = refused(playground.deploy("steal", {"web": service}, "bob"))
        assert (problem["code"], problem["path"]) == (
            "registry-unauthorized", "services.web.image"), problem
        assert HOST in problem["message"] and "web" in problem["message"], problem
    assert not playground.containers("steal", "bob")
    assert not playground.store.deployments(playground.accounts["bob"], "steal")
    assert len(driver.pulls) == pulls, driver.pulls
    assert driver.checks[checks:] and all(user is None for _, user in driver.checks[checks:])

    # bob logs in with his own valid login: no new download, but a check with his name.
    login(playground, "bob")
    checks = len(driver.checks)
    events, status = up(playground, "steal", {"web": {"image": REF}}, "bob")
    assert status == "succeeded", events
    assert playground.spec_of("steal", "web", "bob").image == pinned(REF, SECRET_ID)
    assert len(driver.pulls) == pulls, driver.pulls
    assert driver.checks[checks:] == [(REF, "bob")]
    assert all(user == "alice" for _, user in driver.pulls)


def test_a_wrong_login_is_no_better_than_none(playground: Server,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """bob's stored login stops working (password changed at the registry): refused again,
    although the image is on the engine and alice may still use it."""
    login(playground, "alice")
    login(playground, "bob")
    assert up(playground, "shop", {"web": {"image": REF}})[1] == "succeeded"
    two_users(playground.driver, monkeypatch, HOST, {"alice": USERS["alice"],
                                                     "bob": "changed-at-the-registry"})
    problem = refused(playground.deploy("steal", {"web": {"image": REF}}, "bob"))
    assert problem["code"] == "registry-unauthorized", problem
    assert playground.driver.checks[-1] == (REF, "bob")
    assert not playground.containers("steal", "bob")
    assert up(playground, "shop", {"web": {"image": REF}, "side": {"image": REF}})[1] == \
        "succeeded"


def test_bobs_answer_is_the_same_whether_or_not_alice_pulled_it(playground: Server) -> None:
    def probe(reference: str) -> bytes:
        response = playground.deploy("steal", {"web": {"image": reference}}, "bob")
        assert response.status_code == 422, response.text
        return response.content.replace(reference.encode(), b"REF")

    missing = f"{HOST}/team/nothing:1"
    before = [probe(REF), probe(missing)]
    login(playground, "alice")
    assert up(playground, "shop", {"web": {"image": REF}})[1] == "succeeded"
    after = [probe(REF), probe(missing)]
    assert before == after
    assert len(set(after)) == 1
    assert b"registry-unauthorized" in after[0]
    assert USERS["alice"].encode() not in b"".join(after)


def test_ids_and_server_build_repositories_stay_not_allowed(playground: Server) -> None:
    image_id = alices_app(playground)
    (tag,) = [r for r, i in playground.driver.images.items() if i == image_id]
    assert tag.startswith("dy-alice-"), tag
    checks, lookups = len(playground.driver.checks), len(playground.driver.image_lookups)
    for reference in (image_id, image_id.removeprefix("sha256:"), image_id[7:19], tag,
                      tag.partition(":")[0], f"{tag.partition(':')[0]}@{image_id}",
                      f"docker.io/library/{tag}", "dy-bob-anything:1"):
        problem = refused(playground.deploy("probe", {"web": {"image": reference}}, "bob"))
        assert (problem["code"], problem["message"]) == (
            "image-not-allowed", f"image {reference!r} is not available to this account"), \
            reference
    problem = refused(build_up(playground, "bob", "evil", f"FROM {tag}\n"))
    assert (problem["code"], problem["line"]) == ("image-not-allowed", 1), problem
    assert len(playground.driver.checks) == checks  # no registry was asked
    assert len(playground.driver.image_lookups) == lookups  # nor the engine
    assert not playground.containers("probe", "bob")


def test_without_tenant_pulls_a_registry_name_is_not_allowed_and_never_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with with_playground(tmp_path, tenant_pulls=False) as server:
        two_users(server.driver, monkeypatch, HOST, USERS)
        server.driver.remote[REF] = SECRET_ID
        login(server, "alice")
        answers = []
        for reference in (REF, f"{HOST}/team/nothing:1", "nginx:1.27"):
            response = server.deploy("shop", {"web": {"image": reference}})
            problem = refused(response)
            assert (problem["code"], problem["path"]) == (
                "image-not-allowed", "services.web.image"), problem
            answers.append(response.content.replace(reference.encode(), b"REF"))
        assert len(set(answers)) == 1
        problem = refused(build_up(server, "alice", "built", f"FROM {REF}\n"))
        assert (problem["code"], problem["line"]) == ("image-not-allowed", 1), problem
        assert server.driver.checks == [] and server.driver.pulls == []
        assert not server.containers("shop")
        # the allowed base still works
        assert up(server, "shop", {"web": {"image": IMAGE}})[1] == "succeeded"


# == The registry's answers ======================================================================
def test_a_registry_down_at_admission_is_unreachable(playground: Server) -> None:
    login(playground, "alice")
    playground.driver.down.add(HOST)
    problem = refused(playground.deploy("shop", {"web": {"image": REF}}))
    assert (problem["code"], problem["path"]) == ("registry-unreachable",
                                                  "services.web.image"), problem
    assert HOST in problem["message"], problem
    assert not playground.store.deployments(playground.accounts["alice"], "shop")
    assert playground.driver.pulls == []


def test_an_unknown_tag_is_image_not_found(playground: Server) -> None:
    login(playground, "alice")
    problem = refused(playground.deploy("shop", {"web": {"image": f"{HOST}/team/secret:9"}}))
    assert problem["code"] == "image-not-found", problem
    assert playground.driver.pulls == []


def test_a_registry_going_down_during_the_pull_changes_nothing(
        playground: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    driver = playground.driver
    login(playground, "alice")
    assert up(playground, "shop", {"web": {"image": REF}, "cache": {"image": IMAGE}})[1] == \
        "succeeded"
    before = playground.containers("shop")
    specs = {cid: driver.specs[cid] for ids in before.values() for cid in ids}
    started = driver.counter

    newer = f"{HOST}/team/secret:2"
    driver.remote[newer] = "sha256:" + "6" * 64
    pull = driver.pull

    def pull_then_down(reference: str, *, auth: Mapping[str, str] | None = None,
                       on_progress: Callable[[PullMessage], None] | None = None,
                       stop: StreamStop | None = None) -> str:
        driver.down.add(HOST)  # it answered the admission's check, then went away
        return pull(reference, auth=auth, on_progress=on_progress, stop=stop)

    monkeypatch.setattr(driver, "pull", pull_then_down)
    events, status = up(playground, "shop", {"web": {"image": newer},
                                             "cache": {"image": IMAGE}})
    assert status == "failed", events
    last = {e["service"]: e for e in events}
    assert last["web"]["state"] == "SERVICE_DEPLOYMENT_FAILED", last
    assert "the pull of" in last["web"]["reason"] and HOST in last["web"]["reason"], last
    assert last["cache"]["state"] == "SERVICE_DEPLOYMENT_COMPLETED", last
    assert last["cache"]["reason"].startswith("kept the running version"), last
    assert playground.containers("shop") == before
    assert driver.counter == started  # nothing was created
    assert {cid: driver.specs[cid] for ids in before.values() for cid in ids} == specs
    assert all(driver.items[cid].status == "running" for cid in specs)


# == Pulls and pull_policy =======================================================================
def test_a_pulls_progress_is_in_the_events(playground: Server) -> None:
    login(playground, "alice")
    events, status = up(playground, "shop", {"web": {"image": REF}})
    assert status == "succeeded"
    pulling = [e["reason"] for e in events
               if e["service"] == "web" and e["state"] == "UPDATE_QUEUED"
               and str(e.get("reason", "")).startswith("pulling ")]
    assert pulling, events
    assert any("MiB" in reason for reason in pulling), pulling


def test_an_image_used_by_two_services_is_pulled_once(playground: Server) -> None:
    login(playground, "alice")
    events, status = up(playground, "shop", {"a": {"image": REF}, "b": {"image": REF}})
    assert status == "succeeded", events
    assert playground.driver.pulls == [(pinned(REF, SECRET_ID), "alice")]
    assert playground.driver.checks == [(REF, "alice")]
    assert playground.spec_of("shop", "a").image == playground.spec_of("shop", "b").image == \
        pinned(REF, SECRET_ID)


def test_pull_policy_never_and_always(playground: Server) -> None:
    login(playground, "alice")
    problem = refused(playground.deploy("shop", {"web": {"image": REF,
                                                         "pull_policy": "never"}}))
    assert (problem["code"], problem["path"]) == ("image-missing", "services.web.image"), problem
    assert playground.driver.pulls == []
    for n in (1, 2, 3):
        events, status = up(playground, "shop", {"web": {"image": REF,
                                                         "pull_policy": "always"}})
        assert status == "succeeded", events
        assert len(playground.driver.pulls) == n, playground.driver.pulls
    # present now: `never` uses it (the registry is still asked for this account)
    checks = len(playground.driver.checks)
    assert up(playground, "other", {"web": {"image": REF, "pull_policy": "never"}})[1] == \
        "succeeded"
    assert len(playground.driver.pulls) == 3
    assert playground.driver.checks[checks:] == [(REF, "alice")]


def test_a_private_base_image_needs_the_accounts_own_login(playground: Server) -> None:
    login(playground, "alice")
    problem = refused(build_up(playground, "bob", "evil", f"FROM {REF}\n"))
    assert (problem["code"], problem["line"], problem["path"]) == (
        "registry-unauthorized", 1, "services.app.build"), problem
    assert not [b for b in playground.driver.builds if b.startswith("dy-bob-")]
    response = build_up(playground, "alice", "built", f"FROM {REF}\n")
    assert response.status_code == 202, response.text
    events, status = playground.events(str(response.json()["deployment"]))
    assert status == "succeeded", events
    assert [user for _, user in playground.driver.pulls] == ["alice"]  # the missing base


# == Pushes =======================================================================================
def test_builds_are_pushed_with_the_accounts_login_and_run_by_digest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with with_playground(tmp_path, registry=f"{HOST}/team") as server:
        driver = server.driver
        two_users(driver, monkeypatch, HOST, USERS)
        login(server, "alice")
        pushed_as: list[str | None] = []
        push = driver.push

        def recorded(reference: str, *, auth: Mapping[str, str] | None = None,
                     on_progress: Callable[[PullMessage], None] | None = None,
                     stop: StreamStop | None = None) -> str:
            pushed_as.append((auth or {}).get("username"))
            return push(reference, auth=auth, on_progress=on_progress, stop=stop)

        monkeypatch.setattr(driver, "push", recorded)
        response = build_up(server, "alice", "shop", "FROM dockyard/busybox:1\n")
        events, status = server.events(str(response.json()["deployment"]))
        assert status == "succeeded", events
        (remote,) = driver.pushes
        assert remote.startswith(f"{HOST}/team/dy-alice-"), remote
        assert pushed_as == ["alice"]
        image = server.spec_of("shop", "app").image
        assert image == pinned(remote, driver.remote[remote]), image
        assert image.startswith(f"{HOST}/team/") and "@sha256:" in image
        assert any(str(e.get("reason", "")).startswith("pushed as ") for e in events), events
