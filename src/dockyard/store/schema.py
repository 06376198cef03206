"""Tables (SQLAlchemy Core) and the ordered schema migrations."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True),
)

accounts = sa.Table(
    "accounts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

tokens = sa.Table(
    "tokens", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

projects = sa.Table(
    "projects", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("name", sa.String(253), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("account_id", "name"),
)

deployments = sa.Table(
    "deployments", metadata,
    sa.Column("id", sa.String(12), primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("project_json", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    # v8: who ran it and from what (versions, git), and the plan it carried out (JSON)
    sa.Column("record_json", sa.Text, nullable=True),
    sa.Column("plan_json", sa.Text, nullable=True),
)

events = sa.Table(
    "events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("deployment_id", sa.String(12),
              sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("service", sa.String(253), nullable=False),
    sa.Column("state", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

build_logs = sa.Table(
    "build_logs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("deployment_id", sa.String(12),
              sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("service", sa.String(253), nullable=False),
    sa.Column("line", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

service_status = sa.Table(
    "service_status", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("service", sa.String(253), nullable=False),
    sa.Column("deployment_id", sa.String(12),
              sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False),
    sa.Column("state", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("project_id", "service"),
)

configs = sa.Table(
    "configs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("value_encrypted", sa.Text, nullable=False),  # Fernet: never the plain value
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),  # v8: 1, 2, ...
    sa.UniqueConstraint("project_id", "name"),
)

config_history = sa.Table(
    "config_history", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("value_encrypted", sa.Text, nullable=False),
    sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),  # v8; unknown for values replaced before
)

deployment_contexts = sa.Table(
    "deployment_contexts", metadata,
    sa.Column("deployment_id", sa.String(12),
              sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("digest", sa.String(71), nullable=False),
    sa.UniqueConstraint("deployment_id", "digest"),
)

registry_credentials = sa.Table(
    "registry_credentials", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("username", sa.String(255), nullable=False),
    sa.Column("secret_encrypted", sa.Text, nullable=False),  # Fernet: never the password
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("account_id", "host"),
)

deployment_images = sa.Table(
    "deployment_images", metadata,
    sa.Column("deployment_id", sa.String(12),
              sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("service", sa.String(253), nullable=False),
    sa.Column("reference", sa.Text, nullable=False),  # as the project wrote it (or the build)
    sa.Column("digest", sa.Text, nullable=False),  # repo@sha256:... (or the image id, local)
    sa.Column("image_id", sa.String(71), nullable=False),
    sa.UniqueConstraint("deployment_id", "service"),
)

image_pulls = sa.Table(
    "image_pulls", metadata,
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("account_id", "reference"),
)

deployment_configs = sa.Table(
    "deployment_configs", metadata,
    sa.Column("deployment_id", sa.String(12),
              sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),  # never the value
    sa.UniqueConstraint("deployment_id", "name"),
)

project_expiry = sa.Table(
    "project_expiry", metadata,
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"),
              nullable=False, unique=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("volumes", sa.Boolean, nullable=False),  # remove the volumes too (--ttl-volumes)
    sa.Column("deployment_id", sa.String(12), nullable=True),  # the `up` that set it
)

Migration = Callable[[sa.Connection], None]


def _v1_initial(conn: sa.Connection) -> None:
    for table in (accounts, tokens, projects, deployments, events, build_logs):
        table.create(conn)


def _v2_service_status(conn: sa.Connection) -> None:
    """The current state of every service of every project: what `ps` reads."""
    service_status.create(conn)


def _v3_configs(conn: sa.Connection) -> None:
    """Configs (secrets) per project, encrypted."""
    configs.create(conn)


def _v4_config_history(conn: sa.Connection) -> None:
    """Replaced config values (encrypted), so what still runs with them stays redacted."""
    config_history.create(conn)


def _v5_deployment_contexts(conn: sa.Connection) -> None:
    """The build contexts each deployment used: what context garbage collection keeps."""
    deployment_contexts.create(conn)


def _v6_registry_credentials(conn: sa.Connection) -> None:
    """Registry logins per account (password encrypted): used only for its pulls and pushes."""
    registry_credentials.create(conn)


def _v7_images(conn: sa.Connection) -> None:
    """The image each service of a deployment ran (pinned by digest), and when an account
    last pulled each reference (`pull_policy: daily` and the like)."""
    deployment_images.create(conn)
    image_pulls.create(conn)


def _v8_history(conn: sa.Connection) -> None:
    """What makes a deployment reproducible and undoable: its record (who, versions, git) and
    plan, the config versions it ran, numbered config values, and previews' expiry."""
    # A store made from scratch already has these columns: earlier migrations create tables
    # from today's definitions. Only an older store lacks them.
    inspector = sa.inspect(conn)
    for table, column, kind in (("deployments", "record_json", "TEXT"),
                                ("deployments", "plan_json", "TEXT"),
                                ("configs", "version", "INTEGER NOT NULL DEFAULT 1"),
                                ("config_history", "version", "INTEGER")):
        if column not in {c["name"] for c in inspector.get_columns(table)}:
            conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))
    deployment_configs.create(conn)
    project_expiry.create(conn)


# Append only: a release never edits a migration that has shipped.
MIGRATIONS: list[Migration] = [_v1_initial, _v2_service_status, _v3_configs,
                               _v4_config_history, _v5_deployment_contexts,
                               _v6_registry_credentials, _v7_images, _v8_history]
