"""Real local registries for engine tests: Debian's `docker-registry` (CNCF distribution 2.8).

Fixtures (session-scoped; import them into a test module: `from tests.engine.registry import
registry`):
- `registry`: plain HTTP on 127.0.0.1 at a free port. The engine treats 127.0.0.0/8 as an
  insecure registry, so it pulls over plain HTTP without any set-up.
- `auth_registry`: the same, with htpasswd basic auth (`htpasswd -Bbn`); `username`/`password`.
- `tls_registry`: HTTPS with a certificate from a test CA, on the docker0 bridge gateway
  (e.g. 172.17.0.1), which the engine does not treat as insecure; it trusts the CA through
  `/etc/docker/certs.d/HOST:PORT/ca.crt` (read per pull, no engine restart).
- `images`: makes unique test images (a random layer over `dockyard/busybox:1`).

A `Registry` pushes (`push`, `upload`), pulls (`pull`), lists (`tags`, `digest`), deletes
manifests (`delete`), stops and starts again on the same port with the same content (`stop`,
`start`, or `with reg.down():`: the registry going down mid-deploy), and answers slowly for a
while (`with reg.slow(delay, rate) as proxy:`, a delaying TCP proxy on its port; `proxy.cut()`
takes it down mid-transfer). Mind the engine: when a registry goes away in the middle of a
layer download, the engine retries that layer 5 times (after 5, 10, 15, 20, 25 s) before the
pull fails, so a cut pull fails after about 75 s, or succeeds if the registry came back.

Clean-up: at teardown every image reference on the engine under the registry's host
(`HOST:PORT/...`, tags and digests: whatever a test, Dockyard or a fixture pulled or pushed) is
removed, by reference (a pushed `dockyard/busybox:1` shares its ID with the base image, which
stays), and every image labelled `dockyard.test=<this session's run id>` by ID. The CA directory
under /etc/docker/certs.d is removed. Passwords never appear in a repr, error or log line here.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import ipaddress
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

BINARY = "docker-registry"
BASE_IMAGE = "dockyard/busybox:1"
LABEL = "dockyard.test"  # the engine tests' clean-up label (tests/engine/test_example_images.py)
RUN = uuid.uuid4().hex[:12]
CERTS_D = Path("/etc/docker/certs.d")
MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])
START_TIMEOUT = 20.0


class RegistryError(Exception):
    """A registry fixture could not do what a test asked (start, push, an API call)."""


@dataclass
class Pushed:
    """An image in a registry: `ref` (HOST:PORT/REPO:TAG), its manifest `digest`, and
    `pinned` (HOST:PORT/REPO@DIGEST)."""

    ref: str
    digest: str

    @property
    def pinned(self) -> str:
        return f"{self.ref.rpartition(':')[0]}@{self.digest}"


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


def bridge_gateway(client: docker.DockerClient) -> str:
    """The docker0 bridge's gateway IP: an address on this host that the engine reaches and
    does not treat as an insecure registry (unlike 127.0.0.0/8)."""
    ipam = client.networks.get("bridge").attrs["IPAM"]["Config"]
    for entry in ipam:
        if entry.get("Gateway"):
            return str(entry["Gateway"])
    raise RegistryError("the engine's bridge network has no gateway address")


@dataclass
class TestCA:
    """A throw-away CA and one server certificate it signed, as PEM files."""

    ca_cert: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def create(cls, directory: Path, ip: str) -> TestCA:
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockyard test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                           crl_sign=True, content_commitment=False,
                                           key_encipherment=False, data_encipherment=False,
                                           key_agreement=False, encipher_only=False,
                                           decipher_only=False), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        directory.mkdir(parents=True, exist_ok=True)
        made = cls(directory / "ca.crt", directory / "server.crt", directory / "server.key")
        made.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        made.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        made.server_key.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        return made


@dataclass
class Registry:
    """One `docker-registry serve` process and what tests do with it. `host` is what image
    references start with (`127.0.0.1:PORT`); `root` is its storage directory."""

    ip: str
    port: int
    root: Path
    client: docker.DockerClient = field(repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: TestCA | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def auth_config(self) -> dict[str, str] | None:
        """docker-py's `auth_config` for this registry (None when it has no auth)."""
        if self.username is None or self.password is None:
            return None
        return {"username": self.username, "password": self.password,
                "serveraddress": self.host}

    @property
    def certs_dir(self) -> Path:
        """Where the engine looks for this registry's CA."""
        return CERTS_D / self.host

    @property
    def log(self) -> Path:
        return self.root.parent / f"{self.root.name}.log"

    def ref(self, repo_tag: str) -> str:
        return f"{self.host}/{repo_tag}"

    # -- the process ------------------------------------------------------------------------
    def start(self, port: int | None = None) -> None:
        """Serve (again) on this registry's port, or on `port`, with the same storage and
        wait until `GET /v2/` answers."""
        if self.process is not None:
            raise RegistryError(f"the registry at {self.host} already runs")
        serving = port or self.port
        config = self.root.parent / f"{self.root.name}.yml"
        config.write_text(json.dumps(self._config(serving), indent=2))  # JSON is YAML
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([BINARY, "serve", str(config)], stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise RegistryError(f"docker-registry exited {code} at start:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError, OSError):
                with self._http(serving) as http:
                    if http.get("/v2/").status_code in (200, 401):
                        return
            if time.monotonic() > deadline:
                self.stop()
                raise RegistryError(f"docker-registry did not answer on port {serving} within "
                                    f"{START_TIMEOUT:.0f} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL): clients get connection refused."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """The registry stopped within the block, and serving again (same port, same content)
        after it, also when the block fails: a session's registry stays usable."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _config(self, port: int) -> dict[str, Any]:
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.root)},
                        "delete": {"enabled": True}},
            "http": {"addr": f"{self.ip}:{port}"},
        }
        if self.tls is not None:
            config["http"]["tls"] = {"certificate": str(self.tls.server_cert),
                                     "key": str(self.tls.server_key)}
        if self.username is not None:
            config["auth"] = {"htpasswd": {"realm": "dockyard-test",
                                           "path": str(self.root.parent / "htpasswd")}}
        return config

    @contextlib.contextmanager
    def slow(self, delay: float = 1.0, rate: int | None = None) -> Iterator[SlowProxy]:
        """Within the block the registry answers each new connection `delay` seconds late and
        sends at most `rate` bytes/s per connection: it moves to an internal port and a proxy
        takes its own. The same content and address before, during and after. The proxy's
        `cut()` takes the registry down at once (open connections reset, new ones refused)
        until the block ends; `stop()` would leave the proxy accepting connections."""
        self.stop()
        inner = free_port(self.ip)
        self.start(port=inner)
        proxy = SlowProxy(self.ip, self.port, inner, delay, rate)
        try:
            yield proxy
        finally:
            proxy.close()
            self.stop()
            self.start()

    # -- the registry's API --------------------------------------------------------------------
    def _http(self, port: int | None = None) -> httpx.Client:
        auth = (self.username, self.password) if self.username and self.password else None
        verify: ssl.SSLContext | bool = True
        if self.tls is not None:
            verify = ssl.create_default_context(cafile=str(self.tls.ca_cert))
        scheme = "https" if self.tls else "http"
        return httpx.Client(base_url=f"{scheme}://{self.ip}:{port or self.port}",
                            auth=auth, verify=verify, timeout=10)

    def tags(self, repo: str) -> list[str]:
        """The repository's tags, sorted ([] when it does not exist)."""
        with self._http() as http:
            answer = http.get(f"/v2/{repo}/tags/list")
        if answer.status_code == 404:
            return []
        self._check(answer, f"list the tags of {repo}")
        return sorted(answer.json().get("tags") or [])

    def digest(self, repo_tag: str) -> str | None:
        """The manifest digest `repo:tag` points at, or None when it is not there."""
        repo, _, tag = repo_tag.rpartition(":")
        with self._http() as http:
            answer = http.head(f"/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES})
        if answer.status_code == 404:
            return None
        self._check(answer, f"read the manifest of {repo_tag}")
        return str(answer.headers["Docker-Content-Digest"])

    def delete(self, repo_tag: str) -> None:
        """Delete the manifest `repo:tag` points at (with every tag on it): the tag becomes
        unknown to pulls."""
        repo = repo_tag.rpartition(":")[0]
        digest = self.digest(repo_tag)
        if digest is None:
            raise RegistryError(f"{self.ref(repo_tag)} is not in the registry")
        with self._http() as http:
            answer = http.delete(f"/v2/{repo}/manifests/{digest}")
        self._check(answer, f"delete {repo_tag}")

    @staticmethod
    def _check(answer: httpx.Response, what: str) -> None:
        if answer.status_code >= 400:
            raise RegistryError(f"could not {what}: HTTP {answer.status_code} {answer.text[:300]}")

    # -- the engine ----------------------------------------------------------------------------
    def push(self, local_image: str, repo_tag: str) -> str:
        """Tag `local_image` as HOST/repo:tag, push it, return the manifest digest."""
        repository, _, tag = self.ref(repo_tag).rpartition(":")
        if not self.client.images.get(local_image).tag(repository, tag):
            raise RegistryError(f"could not tag {local_image} as {repository}:{tag}")
        digest = None
        stream = self.client.api.push(repository, tag=tag, stream=True, decode=True,
                                      auth_config=self.auth_config)
        for message in stream:
            if "error" in message:
                raise RegistryError(f"push of {repository}:{tag} failed: {message['error']}")
            aux = message.get("aux") or {}
            if aux.get("Digest"):
                digest = str(aux["Digest"])
        if digest is None:
            raise RegistryError(f"push of {repository}:{tag} reported no digest")
        return digest

    def upload(self, image: str, repo_tag: str) -> Pushed:
        """Push `image` as repo:tag, then remove the pushed reference from the engine, so that
        a pull has to fetch it. `image` itself stays (remove it too for a full download)."""
        digest = self.push(image, repo_tag)
        ref = self.ref(repo_tag)
        self.remove_local(ref)
        return Pushed(ref, digest)

    def pull(self, ref: str, *, auth: bool = True) -> str:
        """`docker pull ref` through the engine API (with this registry's credentials unless
        `auth` is False); returns the image ID. Errors carry the engine's message unchanged:
        `docker.errors.APIError` when the engine refused at once, `RegistryError` when it
        reported an error in the pull's stream."""
        repository, tag = _split(ref)
        stream = self.client.api.pull(repository, tag=tag, stream=True, decode=True,
                                      auth_config=self.auth_config if auth else None)
        for message in stream:
            if "error" in message:
                raise RegistryError(str(message["error"]))
        return str(self.client.images.get(ref).id)

    def remove_local(self, ref: str) -> None:
        """Remove one image reference (tag or digest) from the engine; never an image ID, so
        a base image that shares the pushed ID stays. Missing references are fine."""
        with contextlib.suppress(docker.errors.ImageNotFound):
            self.client.images.remove(ref, force=True, noprune=False)

    def local_refs(self) -> list[str]:
        """Every reference on the engine under this registry's host."""
        found: list[str] = []
        prefix = f"{self.host}/"
        # One list call: docker-py's images.list() inspects each image after listing, and fails
        # when another test removes one in between (the engine is shared).
        for image in self.client.api.images(all=True):
            for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or []):
                if ref.startswith(prefix):
                    found.append(ref)
        return found

    def clean_engine(self) -> None:
        """Remove every reference under this registry's host; one that fails does not keep
        the others."""
        for ref in self.local_refs():
            with contextlib.suppress(docker.errors.APIError):
                self.remove_local(ref)


def _split(ref: str) -> tuple[str, str | None]:
    """`repo:tag` or `repo@digest` into the repository and the tag (or digest)."""
    if "@" in ref:
        repository, _, digest = ref.partition("@")
        return repository, digest
    head, sep, tail = ref.rpartition(":")
    if sep and "/" not in tail:
        return head, tail
    return ref, "latest"


class SlowProxy:
    """A TCP proxy on ip:port to ip:target that waits `delay` s before serving each connection
    and sends at most `rate` bytes/s back to the client."""

    def __init__(self, ip: str, port: int, target: int, delay: float, rate: int | None) -> None:
        self.ip, self.target, self.delay, self.rate = ip, target, delay, rate
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((ip, port))
        self.listener.listen(64)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        """Remember `sock` to close it with the proxy (at once when the proxy is closed)."""
        with self.lock:
            if self.closed.is_set():
                sock.close()
                raise OSError("the proxy is closed")
            self.sockets.append(sock)
        return sock

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client = self._track(self.listener.accept()[0])
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if self.closed.wait(self.delay):
            return
        try:
            upstream = self._track(socket.create_connection((self.ip, self.target), timeout=10))
            upstream.settimeout(None)
        except OSError:
            return  # the client is closed with the proxy
        threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
        self._pump(upstream, client, self.rate)

    def _pump(self, source: socket.socket, sink: socket.socket, rate: int | None) -> None:
        chunk = min(rate, 65536) if rate else 65536
        try:
            while not self.closed.is_set():
                data = source.recv(chunk)
                if not data:
                    break
                sink.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        """Reset every open connection and refuse new ones: the registry is down."""
        self.close()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(timeout=5)
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):  # a reset, as from a dead peer
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
                    sock.shutdown(socket.SHUT_RD)  # wakes the pump blocked in recv()
                sock.close()


# -- making registries ---------------------------------------------------------------------------
def require_binary() -> None:
    if shutil.which(BINARY) is None:
        message = f"no {BINARY} (Debian package docker-registry): run scripts/setup as root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def htpasswd_line(username: str, password: str) -> str:
    """A bcrypt htpasswd line, made by apache2-utils' htpasswd (what the registry reads)."""
    result = subprocess.run(["htpasswd", "-Bbn", username, password], capture_output=True,
                            text=True, timeout=30)
    if result.returncode != 0:
        raise RegistryError(f"htpasswd exited {result.returncode} (apache2-utils installed?)")
    return result.stdout.strip() + "\n"


@contextlib.contextmanager
def running_registry(directory: Path, *, auth: bool = False, tls: bool = False,
                     client: docker.DockerClient | None = None) -> Iterator[Registry]:
    """A started registry with its storage under `directory`; stopped at the end, its images
    removed from the engine, and its CA removed from /etc/docker/certs.d."""
    own_client = client is None
    engine = client or docker.from_env()
    ip = bridge_gateway(engine) if tls else "127.0.0.1"
    directory.mkdir(parents=True, exist_ok=True)
    reg = Registry(ip=ip, port=free_port(ip), root=directory / "storage", client=engine)
    reg.root.mkdir(exist_ok=True)
    try:
        if auth:
            reg.username, reg.password = "dockyard", uuid.uuid4().hex
            (directory / "htpasswd").write_text(htpasswd_line(reg.username, reg.password))
        if tls:
            reg.tls = TestCA.create(directory / "tls", ip)
            reg.certs_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(reg.tls.ca_cert, reg.certs_dir / "ca.crt")
        reg.start()
        yield reg
    finally:
        reg.stop()
        reg.clean_engine()
        if tls:
            shutil.rmtree(reg.certs_dir, ignore_errors=True)
        if own_client:
            engine.close()


class Images:
    """Makes unique local test images (a random layer of `size` bytes over the base image),
    labelled `dockyard.test=<run id>` and removed by that label at teardown."""

    def __init__(self, client: docker.DockerClient, run_id: str = RUN) -> None:
        self.client, self.run_id = client, run_id

    def make(self, size: int = 1_000_000, name: str | None = None) -> str:
        """Build one image; returns its tag (`dockyard-test/blob-<hex>:1` unless `name`)."""
        tag = name or f"dockyard-test/blob-{uuid.uuid4().hex[:10]}:1"
        context = io.BytesIO()
        dockerfile = f"FROM {BASE_IMAGE}\nCOPY blob /blob\n".encode()
        with tarfile.open(fileobj=context, mode="w") as tar:
            for member, data in (("Dockerfile", dockerfile), ("blob", os.urandom(size))):
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        context.seek(0)
        for message in self.client.api.build(fileobj=context, custom_context=True, tag=tag,
                                             labels={LABEL: self.run_id}, rm=True,
                                             forcerm=True, decode=True):
            if "error" in message:
                raise RegistryError(f"building {tag} failed: {message['error']}")
        return tag

    def clean(self) -> None:
        for image_id in self.client.api.images(all=True, quiet=True,
                                               filters={"label": f"{LABEL}={self.run_id}"}):
            with contextlib.suppress(docker.errors.APIError):
                self.client.images.remove(str(image_id), force=True)


# -- pytest fixtures ---------------------------------------------------------------------------
# Each fixture stands alone (its own engine client), so a test module imports only the ones it uses.
def _serve(factory: pytest.TempPathFactory, kind: str) -> Iterator[Registry]:
    require_binary()
    with running_registry(factory.mktemp(f"registry-{kind}"), auth=kind == "auth",
                          tls=kind == "tls") as reg:
        yield reg


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A plain HTTP registry on 127.0.0.1 (insecure for the engine, so no set-up)."""
    yield from _serve(tmp_path_factory, "plain")


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A plain HTTP registry on 127.0.0.1 with htpasswd basic auth."""
    yield from _serve(tmp_path_factory, "auth")


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An HTTPS registry on the docker0 gateway, trusted through /etc/docker/certs.d."""
    yield from _serve(tmp_path_factory, "tls")


@pytest.fixture(scope="session")
def images() -> Iterator[Images]:
    """Makes unique test images; removes them all at the end of the session."""
    client = docker.from_env()
    made = Images(client)
    try:
        yield made
    finally:
        made.clean()
        client.close()
