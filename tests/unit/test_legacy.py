"""Upgrades from engine names without a hash (`server.legacy`), over a fake engine."""

from __future__ import annotations

from tests.fakes import FakeDriver

from dockyard.compose.models import Project, Resource
from dockyard.naming import NamingMode
from dockyard.runtime.specs import Placement, legacy_scope, project_labels, scope, volume_name
from dockyard.server.legacy import with_legacy_volumes

PLACEMENT = Placement(account="bob-smith", project="site", mode=NamingMode.PLAYGROUND,
                      zone="prod1a.localhost", server="s1")
PROJECT = Project(name="site", working_dir="/", compose_files=(), services={},
                  volumes={"data": Resource(name="site_data"), "logs": Resource(name="logs")})


def test_an_old_volume_of_this_project_keeps_its_name_and_a_new_one_gets_the_new_name() -> None:
    driver = FakeDriver()
    driver.ensure_volume(f"{legacy_scope(PLACEMENT)}_data", project_labels(PLACEMENT))
    placement = with_legacy_volumes(driver, PLACEMENT, PROJECT)
    assert volume_name(placement, PROJECT, "data") == "dy-bob-smith-site_data"
    assert volume_name(placement, PROJECT, "logs") == f"{scope(PLACEMENT)}_logs"


def test_an_old_name_with_another_accounts_labels_is_never_adopted() -> None:
    driver = FakeDriver()
    bob = Placement(account="bob", project="smith-site", mode=NamingMode.PLAYGROUND,
                    zone="prod1a.localhost", server="s1")
    assert legacy_scope(bob) == legacy_scope(PLACEMENT)  # the old collision
    driver.ensure_volume(f"{legacy_scope(bob)}_data", project_labels(bob))
    placement = with_legacy_volumes(driver, PLACEMENT, PROJECT)
    assert volume_name(placement, PROJECT, "data") == f"{scope(PLACEMENT)}_data"


def test_once_the_new_volume_exists_the_old_one_is_not_used() -> None:
    driver = FakeDriver()
    for name in (f"{legacy_scope(PLACEMENT)}_data", f"{scope(PLACEMENT)}_data"):
        driver.ensure_volume(name, project_labels(PLACEMENT))
    placement = with_legacy_volumes(driver, PLACEMENT, PROJECT)
    assert volume_name(placement, PROJECT, "data") == f"{scope(PLACEMENT)}_data"
