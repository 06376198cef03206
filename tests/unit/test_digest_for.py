"""Which of an image's registry digests belongs to the name a service gave it."""

from __future__ import annotations

from dockyard.server.deployer import _digest_for

E, F = "sha256:" + "e" * 64, "sha256:" + "f" * 64


def test_a_digest_of_the_same_repository_is_chosen_a_registry_port_included() -> None:
    assert _digest_for("127.0.0.1:5000/t/app:1", [f"127.0.0.1:5000/t/app@{E}"]) == \
        f"127.0.0.1:5000/t/app@{E}"
    assert _digest_for("busybox:1", [f"x/y@{F}", f"busybox@{E}"]) == f"busybox@{E}"
    assert _digest_for("docker.io/library/busybox", [f"busybox@{E}"]) == f"busybox@{E}"


def test_another_repositorys_digest_is_never_shown() -> None:
    assert _digest_for("dockyard/busybox:1", [f"127.0.0.1:5999/t/bb@{E}"]) is None
    assert _digest_for("127.0.0.1:5000/t/app:1", [f"127.0.0.1:5001/t/app@{E}"]) is None
