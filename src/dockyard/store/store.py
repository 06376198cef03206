"""The store's operations. Each takes the account it acts for and touches only its rows."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from dockyard.api_errors import StoreError as StoreError
from dockyard.ids import new_deployment_id
from dockyard.lifecycle import ServiceEvent, ServiceState
from dockyard.store import schema


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    id: str
    project: str
    action: str
    status: str
    created_at: datetime
    finished_at: datetime | None
    account: str = ""


@dataclass(frozen=True, slots=True)
class DeploymentFacts:
    """What makes a deployment reproducible: who ran it and from what (`record`), the plan
    it carried out (None before it planned), and the version of each config it ran."""

    record: dict[str, Any]
    plan: list[dict[str, Any]] | None
    configs: dict[str, int]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event with its position in the store (SSE resumes after `id`)."""

    id: int
    event: ServiceEvent


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    service: str
    deployment: str
    state: ServiceState
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ProjectExpiry:
    """A project's `up --ttl` deadline: when the server takes it down, and whether its
    volumes go too."""

    account: Account
    project: str
    expires_at: datetime
    volumes: bool
    deployment: str | None  # the `up` that set it


@dataclass(frozen=True, slots=True)
class ProjectOverview:
    """A project as `compose ls` shows it: its latest deployment (None: never deployed), how
    many services are in each recorded state, and its deadline (expires_at, volumes)."""

    name: str
    latest: DeploymentRecord | None
    states: dict[ServiceState, int]
    expiry: tuple[datetime, bool] | None


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


def hash_token(token: str) -> str:
    """Tokens are kept only as their SHA-256: a leaked database reveals no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


class Store:
    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, future=True)
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        # One writer at a time in this process: SQLite takes one anyway, and threads that
        # queue here wait for each other instead of sleeping in SQLite's busy handler.
        self._write_lock = threading.RLock()

    @contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        """A write transaction (committed at the end, rolled back on an error)."""
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    @classmethod
    def open(cls, url: str) -> Store:
        """Open (creating or upgrading as needed) the store at `url`."""
        store = cls(url)
        store.migrate()
        return store

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -----------------------------------------------------------------------------
    def version(self) -> int:
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("schema_version"):
                return 0
            value = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version)))
            return int(value.scalar() or 0)

    def migrate(self) -> int:
        """Apply the pending migrations, each in its own transaction. Returns the version."""
        current = self.version()
        latest = len(schema.MIGRATIONS)
        if current > latest:
            raise StoreError(f"the store has schema version {current}, newer than this "
                             f"Dockyard knows ({latest})", hint="upgrade Dockyard")
        if current == 0:
            with self._begin() as conn:
                schema.schema_version.create(conn, checkfirst=True)
        for version in range(current + 1, latest + 1):
            with self._begin() as conn:
                schema.MIGRATIONS[version - 1](conn)
                conn.execute(schema.schema_version.insert().values(version=version))
        return latest

    # -- accounts and tokens --------------------------------------------------------------------
    def ensure_account(self, name: str) -> Account:
        with self._begin() as conn:
            row = conn.execute(sa.select(schema.accounts.c.id).where(
                schema.accounts.c.name == name)).first()
            if row is not None:
                return Account(int(row[0]), name)
            result = conn.execute(schema.accounts.insert().values(name=name,
                                                                  created_at=_now()))
            return Account(_pk(result), name)

    def create_token(self, account: Account, label: str = "default") -> str:
        """A new API token for `account`; the plain token is returned once and never stored."""
        token = "dky_" + secrets.token_urlsafe(32)
        with self._begin() as conn:
            conn.execute(schema.tokens.insert().values(
                account_id=account.id, token_hash=hash_token(token), label=label,
                created_at=_now()))
        return token

    def account_for_token(self, token: str) -> Account | None:
        wanted = hash_token(token)
        query = (sa.select(schema.accounts.c.id, schema.accounts.c.name,
                           schema.tokens.c.token_hash)
                 .join(schema.tokens, schema.tokens.c.account_id == schema.accounts.c.id)
                 .where(schema.tokens.c.token_hash == wanted))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        # The lookup is by hash (the index); the final comparison takes constant time.
        if row is None or not hmac.compare_digest(str(row[2]), wanted):
            return None
        return Account(int(row[0]), str(row[1]))

    def accounts(self) -> list[tuple[Account, int]]:
        """Every account with its number of tokens."""
        query = (sa.select(schema.accounts.c.id, schema.accounts.c.name,
                           sa.func.count(schema.tokens.c.id))
                 .select_from(schema.accounts.outerjoin(
                     schema.tokens, schema.tokens.c.account_id == schema.accounts.c.id))
                 .group_by(schema.accounts.c.id, schema.accounts.c.name)
                 .order_by(schema.accounts.c.name))
        with self.engine.connect() as conn:
            return [(Account(int(r[0]), str(r[1])), int(r[2])) for r in conn.execute(query)]

    def remove_account(self, account: Account) -> None:
        """The account and everything it owns (tokens, projects, deployments, configs)."""
        with self._begin() as conn:
            conn.execute(schema.accounts.delete().where(schema.accounts.c.id == account.id))

    def tokens(self, account: Account) -> list[tuple[int, str, datetime]]:
        """(id, label, created) of the account's tokens; the tokens themselves are not kept."""
        query = (sa.select(schema.tokens.c.id, schema.tokens.c.label, schema.tokens.c.created_at)
                 .where(schema.tokens.c.account_id == account.id).order_by(schema.tokens.c.id))
        with self.engine.connect() as conn:
            return [(int(r[0]), str(r[1]), _aware(r[2])) for r in conn.execute(query)]

    def revoke_token(self, account: Account, token_id: int) -> bool:
        with self._begin() as conn:
            result = conn.execute(schema.tokens.delete().where(
                schema.tokens.c.id == token_id, schema.tokens.c.account_id == account.id))
        return bool(result.rowcount)

    # -- configs ---------------------------------------------------------------------------------
    def set_config(self, account: Account, project: str, name: str,
                   value_encrypted: str) -> datetime:
        now = _now()
        with self._begin() as conn:
            project_id = self._project_id(conn, account, project, create=True)
            assert project_id is not None
            version = self._next_config_version(conn, project_id, name)
            self._keep_history(conn, project_id, [name], now)
            updated = conn.execute(schema.configs.update().where(
                schema.configs.c.project_id == project_id, schema.configs.c.name == name,
            ).values(value_encrypted=value_encrypted, updated_at=now, version=version))
            if not updated.rowcount:
                conn.execute(schema.configs.insert().values(
                    project_id=project_id, name=name, value_encrypted=value_encrypted,
                    updated_at=now, version=version))
        return now

    @staticmethod
    def _next_config_version(conn: sa.Connection, project_id: int, name: str) -> int:
        """One more than any version the config had, removed ones included: a number is never
        given to two values, so a deployment's record names exactly one."""
        c, h = schema.configs, schema.config_history
        highest = [conn.execute(sa.select(sa.func.max(t.c.version)).where(
            t.c.project_id == project_id, t.c.name == name)).scalar() for t in (c, h)]
        return max([int(v) for v in highest if v is not None], default=0) + 1

    def encrypted_configs_versioned(self, account: Account,
                                    project: str) -> dict[str, tuple[str, int]]:
        """name -> (encrypted value, version) of the project's current configs, read at once."""
        c, p = schema.configs, schema.projects
        query = (sa.select(c.c.name, c.c.value_encrypted, c.c.version)
                 .join(p, p.c.id == c.c.project_id)
                 .where(p.c.account_id == account.id, p.c.name == project))
        with self.engine.connect() as conn:
            return {str(r[0]): (str(r[1]), int(r[2])) for r in conn.execute(query)}

    def config_versions(self, account: Account, project: str) -> dict[str, int]:
        """The current version of each of the project's configs (never their values)."""
        c, p = schema.configs, schema.projects
        query = (sa.select(c.c.name, c.c.version).join(p, p.c.id == c.c.project_id)
                 .where(p.c.account_id == account.id, p.c.name == project))
        with self.engine.connect() as conn:
            return {str(r[0]): int(r[1]) for r in conn.execute(query)}

    def encrypted_config_versions(self, account: Account, project: str,
                                  wanted: Mapping[str, int]) -> dict[str, str]:
        """The encrypted value of each (name, version) in `wanted` that is still kept, the
        current one or a replaced one; those that are gone are left out."""
        c, h, p = schema.configs, schema.config_history, schema.projects
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for table in (c, h):
                query = (sa.select(table.c.name, table.c.version, table.c.value_encrypted)
                         .join(p, p.c.id == table.c.project_id)
                         .where(p.c.account_id == account.id, p.c.name == project,
                                table.c.name.in_(list(wanted))))
                for name, version, value in conn.execute(query):
                    if version is not None and wanted.get(str(name)) == int(version):
                        found.setdefault(str(name), str(value))
        return found

    def configs(self, account: Account, project: str) -> list[tuple[str, datetime]]:
        """(name, updated) of the project's configs, by name: never their values."""
        query = (sa.select(schema.configs.c.name, schema.configs.c.updated_at)
                 .join(schema.projects, schema.projects.c.id == schema.configs.c.project_id)
                 .where(schema.projects.c.account_id == account.id,
                        schema.projects.c.name == project)
                 .order_by(schema.configs.c.name))
        with self.engine.connect() as conn:
            return [(str(r[0]), _aware(r[1])) for r in conn.execute(query)]

    def config_counts(self, account: Account) -> dict[str, int]:
        """How many configs each of the account's projects has (projects with none left out)."""
        c, p = schema.configs, schema.projects
        query = (sa.select(p.c.name, sa.func.count(c.c.id)).join(c, c.c.project_id == p.c.id)
                 .where(p.c.account_id == account.id).group_by(p.c.name))
        with self.engine.connect() as conn:
            return {str(r[0]): int(r[1]) for r in conn.execute(query)}

    def encrypted_configs(self, account: Account, project: str) -> dict[str, str]:
        query = (sa.select(schema.configs.c.name, schema.configs.c.value_encrypted)
                 .join(schema.projects, schema.projects.c.id == schema.configs.c.project_id)
                 .where(schema.projects.c.account_id == account.id,
                        schema.projects.c.name == project))
        with self.engine.connect() as conn:
            return {str(r[0]): str(r[1]) for r in conn.execute(query)}

    def remove_configs(self, account: Account, project: str, names: Sequence[str]) -> list[str]:
        """Remove `names`; returns those that existed."""
        with self._begin() as conn:
            project_id = self._project_id(conn, account, project, create=False)
            if project_id is None:
                return []
            found = [str(r[0]) for r in conn.execute(sa.select(schema.configs.c.name).where(
                schema.configs.c.project_id == project_id, schema.configs.c.name.in_(names)))]
            self._keep_history(conn, project_id, found, _now())
            conn.execute(schema.configs.delete().where(
                schema.configs.c.project_id == project_id, schema.configs.c.name.in_(names)))
        return sorted(found)

    HISTORY_KEPT = 10  # replaced values kept per config

    def _keep_history(self, conn: sa.Connection, project_id: int, names: Sequence[str],
                      now: datetime) -> None:
        """Copy the current values of `names` to the history, keeping the last few."""
        table, history = schema.configs, schema.config_history
        rows = conn.execute(sa.select(table.c.name, table.c.value_encrypted, table.c.version)
                            .where(table.c.project_id == project_id,
                                   table.c.name.in_(names))).all()
        for name, value, version in rows:
            conn.execute(history.insert().values(project_id=project_id, name=name,
                                                 value_encrypted=value, replaced_at=now,
                                                 version=version))
            old = [r[0] for r in conn.execute(
                sa.select(history.c.id).where(history.c.project_id == project_id,
                                              history.c.name == name)
                .order_by(history.c.id.desc()).offset(self.HISTORY_KEPT))]
            if old:
                conn.execute(history.delete().where(history.c.id.in_(old)))

    def encrypted_history(self, account: Account, project: str) -> list[tuple[str, str]]:
        """(name, encrypted value) of replaced values, newest first."""
        history = schema.config_history
        query = (sa.select(history.c.name, history.c.value_encrypted)
                 .join(schema.projects, schema.projects.c.id == history.c.project_id)
                 .where(schema.projects.c.account_id == account.id,
                        schema.projects.c.name == project)
                 .order_by(history.c.id.desc()))
        with self.engine.connect() as conn:
            return [(str(r[0]), str(r[1])) for r in conn.execute(query)]

    # -- registry credentials ------------------------------------------------------------------
    def set_registry_credential(self, account: Account, host: str, username: str,
                                secret_encrypted: str) -> datetime:
        """Store (or replace) the account's login for `host`."""
        table, now = schema.registry_credentials, _now()
        with self._begin() as conn:
            updated = conn.execute(table.update().where(
                table.c.account_id == account.id, table.c.host == host,
            ).values(username=username, secret_encrypted=secret_encrypted, updated_at=now))
            if not updated.rowcount:
                conn.execute(table.insert().values(
                    account_id=account.id, host=host, username=username,
                    secret_encrypted=secret_encrypted, updated_at=now))
        return now

    def registry_credentials(self, account: Account) -> list[tuple[str, str, datetime]]:
        """(host, username, updated) of the account's logins, by host: never the secrets."""
        table = schema.registry_credentials
        query = (sa.select(table.c.host, table.c.username, table.c.updated_at)
                 .where(table.c.account_id == account.id).order_by(table.c.host))
        with self.engine.connect() as conn:
            return [(str(r[0]), str(r[1]), _aware(r[2])) for r in conn.execute(query)]

    def registry_secret(self, account: Account, host: str) -> tuple[str, str] | None:
        """(username, encrypted secret) of the account's login for `host`, if any."""
        table = schema.registry_credentials
        query = sa.select(table.c.username, table.c.secret_encrypted).where(
            table.c.account_id == account.id, table.c.host == host)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else (str(row[0]), str(row[1]))

    def remove_registry_credential(self, account: Account, host: str) -> bool:
        table = schema.registry_credentials
        with self._begin() as conn:
            result = conn.execute(table.delete().where(
                table.c.account_id == account.id, table.c.host == host))
        return bool(result.rowcount)

    # -- key rotation ----------------------------------------------------------------------------
    # Every column that holds a value encrypted with the config key, in one place: the key
    # check at start, `rotate-key` and the tests read it. A new encrypted column goes here.
    ENCRYPTED_COLUMNS: tuple[tuple[str, str], ...] = (
        ("configs", "value_encrypted"), ("config_history", "value_encrypted"),
        ("registry_credentials", "secret_encrypted"))

    def _encrypted_tables(self, conn: sa.Connection) -> list[tuple[sa.Table, sa.Column[Any]]]:
        """The encrypted columns of the tables this store has (an old one may lack some)."""
        inspector = sa.inspect(conn)
        tables = [schema.metadata.tables[name] for name, _ in self.ENCRYPTED_COLUMNS]
        return [(table, table.c[column]) for table, (_, column)
                in zip(tables, self.ENCRYPTED_COLUMNS, strict=True)
                if inspector.has_table(table.name)]

    def encrypted_values(self) -> list[str]:
        """Every encrypted value in the store, of every account (for the key check only)."""
        with self.engine.connect() as conn:
            return [str(row[0]) for _, column in self._encrypted_tables(conn)
                    for row in conn.execute(sa.select(column))]

    def reencrypt(self, change: Callable[[str], str]) -> int:
        """Replace every encrypted value by `change(value)`, all in one transaction: when
        `change` raises, nothing is written. Returns how many values were replaced."""
        count = 0
        with self._begin() as conn:
            for table, column in self._encrypted_tables(conn):
                rows = conn.execute(sa.select(table.c.id, column)).all()
                for row_id, value in rows:
                    conn.execute(table.update().where(table.c.id == row_id)
                                 .values({column.name: change(str(value))}))
                    count += 1
        return count

    def compact(self) -> None:
        """Rewrite the SQLite file without its free pages, and empty the WAL into it: what a
        rotation replaced must not stay readable in either (other databases: nothing)."""
        if self.engine.dialect.name != "sqlite":
            return
        with self._write_lock, self.engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def backup_to(self, path: str) -> None:
        """A consistent copy of the SQLite store at `path` (`VACUUM INTO`), taken while the
        server runs: it reads one snapshot and never blocks the server's writes for long."""
        if self.engine.dialect.name != "sqlite":
            raise StoreError("only an SQLite store can be backed up by Dockyard",
                             hint="back up your database with its own tools")
        with self.engine.connect() as conn:
            conn.exec_driver_sql("VACUUM INTO ?", (path,))

    # -- images ----------------------------------------------------------------------------------
    def record_images(self, account: Account, deployment_id: str,
                      images: Sequence[tuple[str, str, str, str]]) -> None:
        """(service, reference, digest, image id) of what the deployment's services run (a
        service given twice: its last). Two statements, whatever the project's size."""
        table = schema.deployment_images
        latest = {service: (reference, digest, image_id)
                  for service, reference, digest, image_id in images}
        if not latest:
            return
        with self._begin() as conn:
            if not self._owns(conn, account, deployment_id):
                return
            conn.execute(table.delete().where(table.c.deployment_id == deployment_id,
                                              table.c.service.in_(list(latest))))
            conn.execute(table.insert(), [
                {"deployment_id": deployment_id, "service": service, "reference": reference,
                 "digest": digest, "image_id": image_id}
                for service, (reference, digest, image_id) in latest.items()])

    def deployment_images(self, account: Account,
                          deployment_id: str) -> dict[str, tuple[str, str, str]]:
        """Per service: (reference, digest, image id) the deployment recorded."""
        table = schema.deployment_images
        with self.engine.connect() as conn:
            if not self._owns(conn, account, deployment_id):
                return {}
            rows = conn.execute(sa.select(table.c.service, table.c.reference, table.c.digest,
                                          table.c.image_id)
                                .where(table.c.deployment_id == deployment_id))
            return {str(r[0]): (str(r[1]), str(r[2]), str(r[3])) for r in rows}

    def images_in_use(self, account: Account, project: str) -> dict[str, str]:
        """Per service of `project`: the digest of the deployment that last recorded one."""
        images, deployments = schema.deployment_images, schema.deployments
        with self.engine.connect() as conn:
            project_id = self._project_id(conn, account, project, create=False)
            if project_id is None:
                return {}
            rows = conn.execute(
                sa.select(images.c.service, images.c.digest)
                .join(deployments, deployments.c.id == images.c.deployment_id)
                .where(deployments.c.project_id == project_id)
                .order_by(deployments.c.created_at))
            return {str(r[0]): str(r[1]) for r in rows}

    def mark_pulled(self, account: Account, reference: str) -> None:
        table = schema.image_pulls
        now = _now()
        with self._begin() as conn:
            done = conn.execute(table.update().where(
                table.c.account_id == account.id, table.c.reference == reference)
                .values(pulled_at=now))
            if not done.rowcount:
                conn.execute(table.insert().values(account_id=account.id, reference=reference,
                                                   pulled_at=now))

    def last_pulled(self, account: Account, reference: str) -> datetime | None:
        table = schema.image_pulls
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table.c.pulled_at).where(
                table.c.account_id == account.id, table.c.reference == reference)).first()
        return None if row is None else _aware(row[0])

    # -- projects and deployments ------------------------------------------------------------------
    def _project_id(self, conn: sa.Connection, account: Account, name: str,
                    create: bool) -> int | None:
        table = schema.projects
        row = conn.execute(sa.select(table.c.id).where(
            table.c.account_id == account.id, table.c.name == name)).first()
        if row is not None:
            return int(row[0])
        if not create:
            return None
        result = conn.execute(table.insert().values(account_id=account.id, name=name,
                                                    created_at=_now()))
        return _pk(result)

    def create_deployment(self, account: Account, project: str, action: str,
                          normalized: dict[str, Any], contexts: Sequence[str] = (), *,
                          record: Mapping[str, Any] | None = None,
                          configs: Mapping[str, int] | None = None) -> str:
        """A new running deployment; `contexts` are the digests of the build contexts it uses
        (kept by context garbage collection while it matters, see `contexts_in_use`),
        `record` who ran it and from what (`server.deployment_record`), `configs` the version
        of each config it runs with."""
        deployment_id = new_deployment_id()
        with self._begin() as conn:
            project_id = self._project_id(conn, account, project, create=True)
            conn.execute(schema.deployments.insert().values(
                id=deployment_id, account_id=account.id, project_id=project_id, action=action,
                status="running", project_json=json.dumps(normalized, sort_keys=True),
                created_at=_now(),
                record_json=None if record is None else json.dumps(record, sort_keys=True)))
            if contexts:
                conn.execute(schema.deployment_contexts.insert(), [
                    {"deployment_id": deployment_id, "digest": digest}
                    for digest in sorted(set(contexts))])
            if configs:
                conn.execute(schema.deployment_configs.insert(), [
                    {"deployment_id": deployment_id, "name": name, "version": version}
                    for name, version in sorted(configs.items())])
        return deployment_id

    def set_deployment_plan(self, account: Account, deployment_id: str,
                            plan: Sequence[Mapping[str, Any]]) -> None:
        """The plan the deployment carries out, one item per service (`plan.plan_items`)."""
        self._update_deployment(account, deployment_id,
                                plan_json=json.dumps(list(plan), sort_keys=True))

    def note_deployment(self, account: Account, deployment_id: str, **facts: Any) -> None:
        """Add `facts` to the deployment's record (e.g. the rollback that undid it)."""
        record = self.deployment_facts(account, deployment_id).record
        self._update_deployment(account, deployment_id,
                                record_json=json.dumps(record | facts, sort_keys=True))

    def _update_deployment(self, account: Account, deployment_id: str, **values: Any) -> None:
        d = schema.deployments
        with self._begin() as conn:
            conn.execute(d.update().where(d.c.id == deployment_id,
                                          d.c.account_id == account.id).values(**values))

    def deployment_facts(self, account: Account, deployment_id: str) -> DeploymentFacts:
        """What the deployment recorded beyond its status: its record, plan and configs."""
        d, dc = schema.deployments, schema.deployment_configs
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(d.c.record_json, d.c.plan_json).where(
                d.c.id == deployment_id, d.c.account_id == account.id)).first()
            configs = {} if row is None else {str(r[0]): int(r[1]) for r in conn.execute(
                sa.select(dc.c.name, dc.c.version).where(dc.c.deployment_id == deployment_id))}
        if row is None:
            return DeploymentFacts({}, None, {})
        return DeploymentFacts(json.loads(row[0]) if row[0] else {},
                               json.loads(row[1]) if row[1] else None, configs)

    def contexts_in_use(self) -> set[tuple[int, str]]:
        """(account id, digest) of every build context a deployment still needs: those of
        running deployments, of each project's latest successful deployment, and of the
        deployments that services' current states come from. Across every account: for the
        server's garbage collection, never for a user."""
        d, st, dc = schema.deployments, schema.service_status, schema.deployment_contexts
        latest = (sa.select(d.c.project_id, sa.func.max(d.c.created_at).label("at"))
                  .where(d.c.status == "succeeded").group_by(d.c.project_id).subquery())
        wanted = sa.union(
            sa.select(d.c.id).where(d.c.status == "running"),
            sa.select(d.c.id).join(latest, sa.and_(latest.c.project_id == d.c.project_id,
                                                   latest.c.at == d.c.created_at))
            .where(d.c.status == "succeeded"),
            sa.select(st.c.deployment_id)).subquery()
        query = (sa.select(d.c.account_id, dc.c.digest)
                 .join(dc, dc.c.deployment_id == d.c.id)
                 .where(d.c.id.in_(sa.select(wanted.c.id))))
        with self.engine.connect() as conn:
            return {(int(r[0]), str(r[1])) for r in conn.execute(query)}

    def deployment_history(self, account: Account,
                           project: str) -> tuple[list[tuple[str, str, str]], set[str]]:
        """Every deployment of the project as (id, action, status), newest first, and the
        ids the services' current states come from (what pruning must keep)."""
        d, st = schema.deployments, schema.service_status
        with self.engine.connect() as conn:
            project_id = self._project_id(conn, account, project, create=False)
            if project_id is None:
                return [], set()
            rows = conn.execute(
                sa.select(d.c.id, d.c.action, d.c.status).where(d.c.project_id == project_id)
                .order_by(d.c.created_at.desc(), d.c.id.desc())).all()
            current = {str(r[0]) for r in conn.execute(
                sa.select(st.c.deployment_id).where(st.c.project_id == project_id))}
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows], current

    def remove_deployments(self, account: Account, ids: Sequence[str]) -> int:
        """Remove the account's deployments `ids` with their events, build logs and context
        records; a running one or one a service's current state comes from is kept whatever
        the caller decided. Returns how many were removed."""
        d, st = schema.deployments, schema.service_status
        removed = 0
        with self._begin() as conn:
            for first in range(0, len(ids), 500):
                batch = [str(r[0]) for r in conn.execute(sa.select(d.c.id).where(
                    d.c.id.in_(list(ids[first:first + 500])), d.c.account_id == account.id,
                    d.c.status != "running",
                    d.c.id.not_in(sa.select(st.c.deployment_id))))]
                for table in (schema.events, schema.build_logs, schema.deployment_contexts,
                              schema.deployment_images, schema.deployment_configs):
                    conn.execute(table.delete().where(table.c.deployment_id.in_(batch)))
                conn.execute(d.delete().where(d.c.id.in_(batch)))
                removed += len(batch)
        return removed

    def finish_deployment(self, account: Account, deployment_id: str, status: str) -> None:
        table = schema.deployments
        with self._begin() as conn:
            conn.execute(table.update().where(
                table.c.id == deployment_id, table.c.account_id == account.id,
                table.c.status == "running").values(status=status, finished_at=_now()))

    def deployments(self, account: Account, project: str | None = None,
                    limit: int = 50, status: str | None = None) -> list[DeploymentRecord]:
        return self._deployments(account.id, project, limit, None, status)

    def _deployments(self, account_id: int, project: str | None, limit: int,
                     deployment_id: str | None,
                     status: str | None = None) -> list[DeploymentRecord]:
        d, p = schema.deployments, schema.projects
        query = (sa.select(d.c.id, p.c.name, d.c.action, d.c.status, d.c.created_at,
                           d.c.finished_at)
                 .join(p, p.c.id == d.c.project_id)
                 .where(d.c.account_id == account_id)
                 .order_by(d.c.created_at.desc(), d.c.id).limit(limit))
        if project is not None:
            query = query.where(p.c.name == project)
        if deployment_id is not None:
            query = query.where(d.c.id == deployment_id)
        if status is not None:
            query = query.where(d.c.status == status)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [DeploymentRecord(str(r[0]), str(r[1]), str(r[2]), str(r[3]), _aware(r[4]),
                                 None if r[5] is None else _aware(r[5])) for r in rows]

    def deployed_project(self, account: Account, deployment_id: str) -> dict[str, Any] | None:
        d = schema.deployments
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(d.c.project_json).where(
                d.c.id == deployment_id, d.c.account_id == account.id)).first()
        return None if row is None else dict(json.loads(row[0]))

    def _owns(self, conn: sa.Connection, account: Account, deployment_id: str) -> bool:
        d = schema.deployments
        return conn.execute(sa.select(d.c.id).where(
            d.c.id == deployment_id, d.c.account_id == account.id)).first() is not None

    # -- events and logs ---------------------------------------------------------------------------
    def add_event(self, account: Account, event: ServiceEvent) -> int:
        """Record `event` in its deployment's history and as its service's current state."""
        if event.deployment is None:
            raise ValueError("an event to store needs its deployment")
        d, st = schema.deployments, schema.service_status
        with self._begin() as conn:
            row = conn.execute(sa.select(d.c.project_id).where(
                d.c.id == event.deployment, d.c.account_id == account.id)).first()
            if row is None:
                raise StoreError(f"no deployment {event.deployment} for this account")
            project_id = int(row[0])
            result = conn.execute(schema.events.insert().values(
                deployment_id=event.deployment, service=event.service, state=int(event.state),
                reason=event.reason, at=event.at))
            values = {"deployment_id": event.deployment, "state": int(event.state),
                      "reason": event.reason, "at": event.at}
            updated = conn.execute(st.update().where(
                st.c.project_id == project_id, st.c.service == event.service).values(**values))
            if updated.rowcount == 0:
                conn.execute(st.insert().values(project_id=project_id, service=event.service,
                                                **values))
            return _pk(result)

    def add_events(self, account: Account, deployment_id: str,
                   events: Sequence[ServiceEvent]) -> None:
        """Record several events of one deployment in one transaction (a no-op `up` of a large
        project keeps every service: one write, not one per service)."""
        if not events:
            return
        d, st = schema.deployments, schema.service_status
        with self._begin() as conn:
            row = conn.execute(sa.select(d.c.project_id).where(
                d.c.id == deployment_id, d.c.account_id == account.id)).first()
            if row is None:
                raise StoreError(f"no deployment {deployment_id} for this account")
            project_id = int(row[0])
            conn.execute(schema.events.insert(), [
                {"deployment_id": deployment_id, "service": e.service, "state": int(e.state),
                 "reason": e.reason, "at": e.at} for e in events])
            last = {e.service: e for e in events}
            known = {str(r[0]) for r in conn.execute(sa.select(st.c.service).where(
                st.c.project_id == project_id, st.c.service.in_(list(last))))}
            rows = [{"row_project": project_id, "row_service": service,
                     "deployment_id": deployment_id, "state": int(event.state),
                     "reason": event.reason, "at": event.at} for service, event in last.items()]
            # One statement each for the services known and the new ones (executemany).
            updates = [r for r in rows if r["row_service"] in known]
            if updates:
                conn.execute(st.update().where(st.c.project_id == sa.bindparam("row_project"),
                                               st.c.service == sa.bindparam("row_service"))
                             .values(deployment_id=sa.bindparam("deployment_id"),
                                     state=sa.bindparam("state"),
                                     reason=sa.bindparam("reason"), at=sa.bindparam("at")),
                             updates)
            inserts = [{"project_id": r["row_project"], "service": r["row_service"],
                        "deployment_id": r["deployment_id"], "state": r["state"],
                        "reason": r["reason"], "at": r["at"]}
                       for r in rows if r["row_service"] not in known]
            if inserts:
                conn.execute(st.insert(), inserts)

    def statuses(self, account: Account, project: str) -> list[ServiceStatus]:
        """The current state of each service of `project`, by service name."""
        st, p = schema.service_status, schema.projects
        query = (sa.select(st.c.service, st.c.deployment_id, st.c.state, st.c.reason, st.c.at)
                 .join(p, p.c.id == st.c.project_id)
                 .where(p.c.account_id == account.id, p.c.name == project)
                 .order_by(st.c.service))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [ServiceStatus(str(r[0]), str(r[1]), ServiceState(int(r[2])), str(r[3]),
                              _aware(r[4])) for r in rows]

    def service_state(self, account: Account, deployment_id: str,
                      service: str) -> ServiceState | None:
        """The current state of `service` in the project of `deployment_id` (None: no state
        yet, or no such deployment of the account): one query, whatever the project's size."""
        st, d = schema.service_status, schema.deployments
        query = (sa.select(st.c.state)
                 .join(d, d.c.project_id == st.c.project_id)
                 .where(d.c.id == deployment_id, d.c.account_id == account.id,
                        st.c.service == service))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else ServiceState(int(row[0]))

    def forget_services(self, account: Account, project: str, services: Sequence[str]) -> None:
        """Drop the current state of services that no longer exist (history is kept)."""
        st, _p = schema.service_status, schema.projects
        with self._begin() as conn:
            project_id = self._project_id(conn, account, project, create=False)
            if project_id is None:
                return
            conn.execute(st.delete().where(st.c.project_id == project_id,
                                           st.c.service.in_(list(services))))

    def projects_deployed(self, account: Account) -> list[str]:
        """Projects with services deployed now (what a playground's project limit counts)."""
        query = (sa.select(schema.projects.c.name).distinct()
                 .join(schema.service_status,
                       schema.service_status.c.project_id == schema.projects.c.id)
                 .where(schema.projects.c.account_id == account.id)
                 .order_by(schema.projects.c.name))
        with self.engine.connect() as conn:
            return [str(r[0]) for r in conn.execute(query)]

    def projects(self, account: Account) -> list[str]:
        p = schema.projects
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(p.c.name).where(p.c.account_id == account.id)
                                .order_by(p.c.name)).all()
        return [str(r[0]) for r in rows]

    def events_since(self, account: Account, deployment_id: str,
                     after: int = 0) -> list[StoredEvent]:
        e, d = schema.events, schema.deployments
        query = (sa.select(e.c.id, e.c.service, e.c.state, e.c.at, e.c.reason)
                 .join(d, d.c.id == e.c.deployment_id)
                 .where(d.c.id == deployment_id, d.c.account_id == account.id, e.c.id > after)
                 .order_by(e.c.id))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [StoredEvent(int(r[0]), ServiceEvent(
            service=str(r[1]), state=ServiceState(int(r[2])), at=_aware(r[3]),
            reason=str(r[4]), deployment=deployment_id)) for r in rows]

    def deployment(self, account: Account, deployment_id: str) -> DeploymentRecord | None:
        found = list(self._deployments(account.id, None, 1, deployment_id))
        return found[0] if found else None

    def unfinished_deployments(self) -> list[tuple[Account, DeploymentRecord]]:
        """Deployments of every account still marked running: for recovery at server start."""
        d, p, a = schema.deployments, schema.projects, schema.accounts
        query = (sa.select(d.c.id, p.c.name, d.c.action, d.c.status, d.c.created_at,
                           d.c.finished_at, a.c.id, a.c.name)
                 .join(p, p.c.id == d.c.project_id).join(a, a.c.id == d.c.account_id)
                 .where(d.c.status == "running").order_by(d.c.created_at))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [(Account(int(r[6]), str(r[7])),
                 DeploymentRecord(str(r[0]), str(r[1]), str(r[2]), str(r[3]), _aware(r[4]),
                                  None, str(r[7]))) for r in rows]

    def all_projects(self) -> list[tuple[Account, str]]:
        """Every project of every account: for the server's own checks, never for a user."""
        p, a = schema.projects, schema.accounts
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(a.c.id, a.c.name, p.c.name)
                                .join(a, a.c.id == p.c.account_id)
                                .order_by(a.c.name, p.c.name)).all()
        return [(Account(int(r[0]), str(r[1])), str(r[2])) for r in rows]

    def account_by_name(self, name: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.accounts.c.id).where(
                schema.accounts.c.name == name)).first()
        return None if row is None else Account(int(row[0]), name)

    def events(self, account: Account, deployment_id: str) -> list[ServiceEvent]:
        e, d = schema.events, schema.deployments
        query = (sa.select(e.c.service, e.c.state, e.c.at, e.c.reason)
                 .join(d, d.c.id == e.c.deployment_id)
                 .where(d.c.id == deployment_id, d.c.account_id == account.id)
                 .order_by(e.c.id))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [ServiceEvent(service=str(r[0]), state=ServiceState(int(r[1])), at=_aware(r[2]),
                             reason=str(r[3]), deployment=deployment_id) for r in rows]

    def append_build_log(self, account: Account, deployment_id: str, service: str,
                         lines: Sequence[str]) -> int:
        """Append `lines`; returns the id of the last one (0 when there is none)."""
        b = schema.build_logs
        with self._begin() as conn:
            if not self._owns(conn, account, deployment_id):
                raise StoreError(f"no deployment {deployment_id} for this account")
            if not lines:
                return 0
            now = _now()
            conn.execute(b.insert(), [
                {"deployment_id": deployment_id, "service": service, "line": line, "at": now}
                for line in lines])
            last = conn.execute(sa.select(sa.func.max(b.c.id)).where(
                b.c.deployment_id == deployment_id, b.c.service == service)).scalar()
            return int(last or 0)

    def replace_build_log_line(self, account: Account, deployment_id: str, line_id: int,
                               line: str) -> None:
        """Rewrite one stored line (the note that says how much of a long log was dropped)."""
        b = schema.build_logs
        with self._begin() as conn:
            if not self._owns(conn, account, deployment_id):
                raise StoreError(f"no deployment {deployment_id} for this account")
            conn.execute(b.update().where(b.c.id == line_id, b.c.deployment_id == deployment_id)
                         .values(line=line))

    def build_log_since(self, account: Account, deployment_id: str,
                        after: int = 0) -> list[tuple[int, str, str]]:
        """(id, service, line) of every build line of a deployment after `after`, in order."""
        b, d = schema.build_logs, schema.deployments
        query = (sa.select(b.c.id, b.c.service, b.c.line).join(d, d.c.id == b.c.deployment_id)
                 .where(d.c.id == deployment_id, d.c.account_id == account.id, b.c.id > after)
                 .order_by(b.c.id))
        with self.engine.connect() as conn:
            return [(int(r[0]), str(r[1]), str(r[2])) for r in conn.execute(query).all()]

    def last_build_deployments(self, account: Account, project: str) -> dict[str, str]:
        """For each service of `project`, the latest deployment that has build output."""
        b, d, p = schema.build_logs, schema.deployments, schema.projects
        query = (sa.select(b.c.service, d.c.id, sa.func.max(b.c.id))
                 .join(d, d.c.id == b.c.deployment_id).join(p, p.c.id == d.c.project_id)
                 .where(d.c.account_id == account.id, p.c.name == project,
                        b.c.service != "")  # "": a deployment's own notes (down)
                 .group_by(b.c.service, d.c.id))
        latest: dict[str, tuple[int, str]] = {}
        with self.engine.connect() as conn:
            for service, deployment_id, last in conn.execute(query).all():
                if service not in latest or int(last) > latest[service][0]:
                    latest[str(service)] = (int(last), str(deployment_id))
        return {service: deployment for service, (_, deployment) in latest.items()}

    def build_log(self, account: Account, deployment_id: str, service: str) -> list[str]:
        b, d = schema.build_logs, schema.deployments
        query = (sa.select(b.c.line).join(d, d.c.id == b.c.deployment_id)
                 .where(d.c.id == deployment_id, d.c.account_id == account.id,
                        b.c.service == service).order_by(b.c.id))
        with self.engine.connect() as conn:
            return [str(r[0]) for r in conn.execute(query).all()]

    # -- expiry ------------------------------------------------------------------------------------
    def set_expiry(self, account: Account, project: str, expires_at: datetime, volumes: bool,
                   deployment_id: str | None) -> None:
        """Set (or move) the project's deadline; nothing when the project does not exist."""
        table = schema.project_expiry
        values = {"expires_at": expires_at, "volumes": volumes, "deployment_id": deployment_id}
        with self._begin() as conn:
            project_id = self._project_id(conn, account, project, create=False)
            if project_id is None:
                return
            updated = conn.execute(table.update().where(table.c.project_id == project_id)
                                   .values(**values))
            if not updated.rowcount:
                conn.execute(table.insert().values(project_id=project_id, **values))

    def clear_expiry(self, account: Account, project: str,
                     expires_at: datetime | None = None) -> bool:
        """Forget the project's deadline (only if it is still `expires_at`, when given: one
        that an `up` moved meanwhile stays); whether there was one to forget."""
        table = schema.project_expiry
        with self._begin() as conn:
            project_id = self._project_id(conn, account, project, create=False)
            if project_id is None:
                return False
            query = table.delete().where(table.c.project_id == project_id)
            if expires_at is not None:
                query = query.where(table.c.expires_at == expires_at)
            return bool(conn.execute(query).rowcount)

    def expiry(self, account: Account, project: str) -> ProjectExpiry | None:
        found = self._expiries(account, project)
        return found[0] if found else None

    def expiries(self) -> list[ProjectExpiry]:
        """Every deadline of every account, soonest first: for the server, never a user."""
        return self._expiries(None, None)

    def _expiries(self, account: Account | None, project: str | None) -> list[ProjectExpiry]:
        e, p, a = schema.project_expiry, schema.projects, schema.accounts
        query = (sa.select(a.c.id, a.c.name, p.c.name, e.c.expires_at, e.c.volumes,
                           e.c.deployment_id)
                 .join(p, p.c.id == e.c.project_id).join(a, a.c.id == p.c.account_id)
                 .order_by(e.c.expires_at, a.c.name, p.c.name))
        if account is not None:
            query = query.where(a.c.id == account.id, p.c.name == project)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [ProjectExpiry(Account(int(r[0]), str(r[1])), str(r[2]), _aware(r[3]),
                              bool(r[4]), None if r[5] is None else str(r[5])) for r in rows]

    def project_overviews(self, account: Account) -> list[ProjectOverview]:
        """Every project of the account with its latest deployment, its services counted by
        state and its deadline, by name: one query, however many projects."""
        d, p, st, e = (schema.deployments, schema.projects, schema.service_status,
                       schema.project_expiry)
        rank = sa.func.row_number().over(partition_by=d.c.project_id,
                                         order_by=(d.c.created_at.desc(), d.c.id.desc()))
        ranked = (sa.select(d.c.project_id, d.c.id, d.c.action, d.c.status, d.c.created_at,
                            d.c.finished_at, rank.label("rank"))
                  .where(d.c.account_id == account.id).subquery())
        latest = sa.select(ranked).where(ranked.c.rank == 1).subquery()
        mine = sa.select(p.c.id).where(p.c.account_id == account.id)
        counts = (sa.select(st.c.project_id, st.c.state, sa.func.count().label("n"))
                  .where(st.c.project_id.in_(mine))
                  .group_by(st.c.project_id, st.c.state).subquery())
        query = (sa.select(p.c.name, latest.c.id, latest.c.action, latest.c.status,
                           latest.c.created_at, latest.c.finished_at, e.c.expires_at,
                           e.c.volumes, counts.c.state, counts.c.n)
                 .select_from(p.outerjoin(latest, latest.c.project_id == p.c.id)
                              .outerjoin(e, e.c.project_id == p.c.id)
                              .outerjoin(counts, counts.c.project_id == p.c.id))
                 .where(p.c.account_id == account.id).order_by(p.c.name, counts.c.state))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        found: dict[str, ProjectOverview] = {}
        for r in rows:
            name = str(r[0])
            if name not in found:
                latest_record = None if r[1] is None else DeploymentRecord(
                    str(r[1]), name, str(r[2]), str(r[3]), _aware(r[4]),
                    None if r[5] is None else _aware(r[5]), account.name)
                expiry = None if r[6] is None else (_aware(r[6]), bool(r[7]))
                found[name] = ProjectOverview(name, latest_record, {}, expiry)
            if r[8] is not None:
                found[name].states[ServiceState(int(r[8]))] = int(r[9])
        return list(found.values())



def _pk(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:
        raise StoreError("the database returned no key for a new row")
    return int(key[0])


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL with NORMAL: a commit no longer waits for its own fsync (the WAL is synced at each
    # checkpoint); the database cannot be corrupted by a crash, and only the last moments of
    # history could be lost to a power cut, never to a process crash.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
