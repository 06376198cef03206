"""What a registry's refusal means (`registry.failures`), from the engine's own error texts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.registry.failures import KINDS, classify, scrub

LOCAL = "127.0.0.1:5000"
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("message", "host", "kind", "reason", "hint"), [
    (f"manifest for {LOCAL}/app:nope not found: manifest unknown: manifest unknown", LOCAL,
     "unknown", f"the registry {LOCAL} has no tag 'nope' for app", "check the image name"),
    ("manifest for nginx:nope not found: manifest unknown: manifest unknown", "docker.io",
     "unknown", "the registry docker.io has no tag 'nope' for nginx", "tag"),
    ("manifest for docker.io/library/nginx:9 not found: manifest unknown", "docker.io",
     "unknown", "has no tag '9' for nginx", "docker.io"),
    (f"manifest for {LOCAL}/team/app@{DIGEST} not found: manifest unknown", LOCAL, "unknown",
     f"has no image {DIGEST} for team/app", "check"),
    ("Error response from daemon: manifest unknown", LOCAL, "unknown",
     f"the registry {LOCAL} has no such image", "check"),
    ("name unknown: repository name not known to registry", "ghcr.io", "unknown",
     "the registry ghcr.io has no such image", "ghcr.io"),
    ("pull access denied for x, repository does not exist or may require 'docker login': "
     "denied: requested access to the resource is denied", "docker.io", "unauthorized",
     "the registry docker.io refused access to x: it does not exist", "registry login docker.io"),
    ("denied: requested access to the resource is denied", "ghcr.io", "unauthorized",
     "refused access", "dockyard registry login ghcr.io"),
    ("unauthorized: authentication required", "ghcr.io", "unauthorized",
     "the registry ghcr.io refused the credentials (unauthorized)",
     "dockyard registry login ghcr.io"),
    (f'Head "https://{LOCAL}/v2/app/manifests/1": no basic auth credentials', LOCAL,
     "unauthorized", f"the registry {LOCAL} asks for credentials", f"registry login {LOCAL}"),
    ("unauthorized: incorrect username or password", "docker.io", "unauthorized",
     "refused the credentials", "dockyard registry login docker.io"),
    (f'Get "https://{LOCAL}/v2/": dial tcp {LOCAL}: connect: connection refused', LOCAL,
     "unreachable", f"the registry {LOCAL} cannot be reached", "is up"),
    ('Get "https://nope.example/v2/": dial tcp: lookup nope.example on 10.0.0.1:53: no such '
     "host", "nope.example", "unreachable", "cannot be reached", "DNS"),
    ('Get "https://r.example/v2/": net/http: request canceled while waiting for connection '
     "(Client.Timeout exceeded while awaiting headers)", "r.example", "timeout", "too slow",
     "--pull-timeout"),
    ('Get "https://r.example/v2/": dial tcp 10.1.1.1:443: i/o timeout', "r.example",
     "unreachable", "cannot be reached", "is up"),
    ('Get "https://r.example/v2/": net/http: TLS handshake timeout', "r.example",
     "unreachable", "cannot be reached", "is up"),
    ('Get "https://r.example/v2/x/blobs/sha256:1": EOF', "r.example", "unreachable",
     "cannot be reached", "is up"),
    ('Get "https://172.17.0.1:5443/v2/": x509: certificate signed by unknown authority',
     "172.17.0.1:5443", "unreachable", "does not trust the certificate",
     "/etc/docker/certs.d/172.17.0.1:5443/ca.crt"),
    ('Get "https://r.example/v2/": x509: certificate is valid for a.example, not r.example',
     "r.example", "unreachable", "does not trust", "certs.d/r.example/ca.crt"),
    ('Get "https://10.0.0.5:5000/v2/": http: server gave HTTP response to HTTPS client',
     "10.0.0.5:5000", "unreachable", "plain HTTP", "insecure-registries"),
    ("received unexpected HTTP status: 503 Service Unavailable", "ghcr.io", "unreachable",
     "failed with HTTP 503", "is up"),
    ("error parsing HTTP 502 response body: invalid character '<'", "ghcr.io", "unreachable",
     "failed with HTTP 502", "try again"),
    ("the image x:1 is larger than the server allows for one pull (90 MiB of at most 50 MiB)",
     "docker.io", "too-large", "too large", "--max-pull-size"),
    ("the pull of x:1 took longer than the server's pull timeout (60 s) and was stopped",
     "docker.io", "timeout", "too slow", "--pull-timeout"),
    ("context deadline exceeded", LOCAL, "timeout", "too slow", "try again"),
    ("toomanyrequests: You have reached your pull rate limit. You may increase the limit by "
     "authenticating and upgrading", "docker.io", "other", "limit is reached",
     "dockyard registry login docker.io"),
    ("failed to register layer: no space left on device", LOCAL, "other",
     f"the registry {LOCAL} could not serve the image (failed to register layer", "check"),
])
def test_engine_texts_are_classified(message: str, host: str, kind: str, reason: str,
                                     hint: str) -> None:
    failure = classify(message, host=host)
    assert failure.kind == kind
    assert reason in failure.reason
    assert hint in failure.hint
    assert host in failure.reason or kind == "too-large"


@pytest.mark.parametrize(("text", "scrubbed"), [
    ('Get "https://alice:hunter2@r.example/v2/": EOF', 'Get "https://***@r.example/v2/": EOF'),
    ("Authorization: Basic YWxpY2U6aHVudGVyMg==", "Authorization: Basic ***"),
    ("bearer eyJhbGciOiJIUzI1NiJ9.e30.x failed", "bearer *** failed"),
    ("GET /token?account=a&password=hunter2&scope=x", "GET /token?account=a&password=***&scope=x"),
    ('{"identitytoken": "tok123"}', '{"identitytoken": "***"}'),
    ("no basic auth credentials", "no basic auth credentials"),
    ("unauthorized: authentication required", "unauthorized: authentication required"),
])
def test_credentials_are_scrubbed(text: str, scrubbed: str) -> None:
    assert scrub(text) == scrubbed


@pytest.mark.parametrize("message", [
    'Get "https://alice:hunter2@r.example/v2/": dial tcp: connection refused',
    'Get "https://alice:hunter2@r.example/v2/": x509: certificate has expired',
    "weird failure at https://alice:hunter2@r.example/v2/ Authorization: Bearer hunter2abc",
    "manifest unknown https://alice:hunter2@r.example",
    "context deadline exceeded password=hunter2",
])
def test_no_reason_or_hint_repeats_a_secret(message: str) -> None:
    failure = classify(message, host="r.example")
    assert "hunter2" not in failure.reason + failure.hint


def test_long_engine_texts_are_cut() -> None:
    failure = classify("boom " * 500, host="r.example")
    assert failure.kind == "other"
    assert len(failure.reason) < 400
    assert failure.reason.endswith("...)")


@given(st.text(max_size=200), st.sampled_from(["docker.io", "ghcr.io", LOCAL]))
def test_every_text_gets_a_kind_a_reason_naming_the_registry_and_a_hint(message: str,
                                                                        host: str) -> None:
    failure = classify(message, host=host)
    assert failure.kind in KINDS
    assert failure.reason and failure.hint
    assert "\n" not in failure.reason
    assert host in failure.reason or failure.kind == "too-large"
