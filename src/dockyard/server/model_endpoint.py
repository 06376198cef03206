"""The server's model endpoint: what a project using a model needs, checked at admission, and
the project as deployed with the model variables (`runtime.model_env`)."""

from __future__ import annotations

from collections.abc import Mapping

from dockyard.compose.models import Project
from dockyard.diagnostics import Diagnostic, Location, error
from dockyard.runtime.model_env import (
    KEY_CONFIG,
    model_services,
    provider_type,
    with_model_environment,
)
from dockyard.server.configs import RedactText
from dockyard.server.settings import ServerSettings


class ModelKeyUnreadable(Exception):
    """The operator's `--model-key-file` cannot be read (reported without its content)."""


def model_key(settings: ServerSettings) -> str | None:
    """The endpoint's key: DOCKYARD_MODEL_KEY, else the key file (read at each deployment, so
    a new key needs no restart), else None."""
    if settings.model_key:
        return settings.model_key
    if settings.model_key_file is None:
        return None
    try:
        return settings.model_key_file.read_text().strip() or None
    except OSError as exc:
        raise ModelKeyUnreadable(f"{settings.model_key_file}: {exc.strerror}") from None


def with_model_key(settings: ServerSettings, redact: RedactText) -> RedactText:
    """`redact` masking the model key too: a service may print the `<NAME>_API_KEY` it got."""
    try:
        key = model_key(settings)
    except ModelKeyUnreadable:
        key = None
    return redact if not key else RedactText([*redact.values, key])


def model_problems(settings: ServerSettings, project: Project) -> list[Diagnostic]:
    """A provider type the server cannot serve, and models without an endpoint (or with a key
    file the server cannot read): refused before anything starts."""
    problems: list[Diagnostic] = []
    for name, service in sorted(project.services.items()):
        kind = provider_type(service)
        if kind is not None and kind != "model":
            problems.append(error(
                "provider-unsupported", f"service {name!r}: provider type {kind!r} is not "
                "served here; only `type: model` is", Location(path=f"services.{name}.provider"),
                "run it as a service with an image, or remove it"))
    users = model_services(project)
    if not users:
        return problems
    if settings.model_endpoint is None:
        problems.append(error(
            "model-endpoint-missing", f"{', '.join(users)} "
            f"{'uses' if len(users) == 1 else 'use'} an AI model, and this server has no "
            "model endpoint", Location(path=f"services.{users[0]}"),
            "ask the server's operator to start it with --model-endpoint URL (an "
            "OpenAI-compatible API; DOCKYARD_MODEL_ENDPOINT), or remove the model"))
        return problems
    try:
        model_key(settings)
    except ModelKeyUnreadable:
        problems.append(error(
            "model-endpoint-missing", "the server's model key file cannot be read",
            Location(path=f"services.{users[0]}"),
            "ask the server's operator to check --model-key-file"))
    return problems


def deployable(settings: ServerSettings, project: Project,
               configs: Mapping[str, str]) -> tuple[Project, dict[str, str]]:
    """The project and configs a deployment runs: every model's variables in its users'
    environments, the key among the configs (so it is resolved, redacted and digested as
    one); unchanged when no service uses a model."""
    if not model_services(project):
        return project, dict(configs)
    try:
        key = model_key(settings)
    except ModelKeyUnreadable:
        key = None  # admission refused it; a key removed since makes the variable empty
    out = dict(configs)
    if key is not None:
        out[KEY_CONFIG] = key
    return with_model_environment(project, settings.model_endpoint, key is not None), out
