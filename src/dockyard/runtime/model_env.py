"""Model providers as Compose means them, served by the operator's endpoint (pure).

Compose has two spellings for "this service needs an AI model", and Dockyard serves both from
one OpenAI-compatible endpoint that the server's operator configures (`dockyard server
--model-endpoint URL`, docs/deployments.md, Model providers):

- a provider service, `provider: {type: model, options: {model: ai/smollm2}}`, which runs no
  container: every service that `depends_on` it gets `<NAME>_URL` and `<NAME>_MODEL`, NAME
  being the provider's name in upper case (Compose's own rule for provider variables);
- the top-level `models:` with a service's `models: [llm]` (or `{llm: {endpoint_var: ...,
  model_var: ...}}`): the service gets `LLM_URL` and `LLM_MODEL` (the model's key in upper
  case, `-` as `_`), or the variables it names.

With a key configured (`--model-key-file`, `DOCKYARD_MODEL_KEY`), the same services also get
`<NAME>_API_KEY` (or `<endpoint_var without _URL>_API_KEY`): the key is resolved like a config
(`KEY_CONFIG`), so it is redacted from logs, never shown by ps or config, and a new key
replaces the services using it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from dockyard.compose.models import Project, Service

KEY_CONFIG = "DOCKYARD_MODEL_KEY"  # the config name the key is resolved under


@dataclass(frozen=True, slots=True)
class ModelUse:
    """One service's use of one model: which variables it gets."""

    service: str  # the service that gets the variables
    source: str  # the provider service, or the top-level model's key
    model: str  # what `<NAME>_MODEL` says (the provider's `model` option, or `models.X.model`)
    url_var: str
    model_var: str
    key_var: str


def provider_type(service: Service) -> str | None:
    """The `provider.type` of a provider service, else None."""
    provider = service.extra.get("provider")
    if not isinstance(provider, Mapping):
        return None
    return str(provider.get("type") or "")


def is_model_provider(service: Service) -> bool:
    return provider_type(service) == "model"


def provider_model(service: Service) -> str:
    """The `model` option of a model provider ("" when it names none)."""
    provider = service.extra.get("provider")
    options = provider.get("options") if isinstance(provider, Mapping) else None
    value = options.get("model") if isinstance(options, Mapping) else None
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return str(value or "")


def model_uses(project: Project) -> list[ModelUse]:
    """Every (service, model) pair, in service order."""
    uses: list[ModelUse] = []
    for name, service in sorted(project.services.items()):
        for dependency in service.depends_on:
            provider = project.services.get(dependency)
            if provider is not None and is_model_provider(provider):
                prefix = dependency.upper()
                uses.append(ModelUse(name, dependency, provider_model(provider),
                                     f"{prefix}_URL", f"{prefix}_MODEL", f"{prefix}_API_KEY"))
        for ref, binding in (service.extra.get("models") or {}).items():
            prefix = str(ref).upper().replace("-", "_")
            spec = project.models.get(ref)
            model = str(spec.get("model") or ref) if isinstance(spec, Mapping) else str(ref)
            options = binding if isinstance(binding, Mapping) else {}
            url_var = str(options.get("endpoint_var") or f"{prefix}_URL")
            model_var = str(options.get("model_var") or f"{prefix}_MODEL")
            key_var = f"{url_var.removesuffix('_URL')}_API_KEY"
            uses.append(ModelUse(name, str(ref), model, url_var, model_var, key_var))
    return uses


def model_services(project: Project) -> list[str]:
    """The services that need the model endpoint: providers and the services using models."""
    return sorted({u.service for u in model_uses(project)} |
                  {n for n, s in project.services.items() if is_model_provider(s)})


def with_model_environment(project: Project, endpoint: str | None,
                           key: bool = False) -> Project:
    """The project with each model's variables in its users' environments (over their own
    values, as Compose sets them); unchanged without an endpoint or a model. A literal `$` is
    written `$$` (environment values are templates); the key is the config `KEY_CONFIG`."""
    uses = model_uses(project)
    if endpoint is None or not uses:
        return project
    added: dict[str, dict[str, str]] = {}
    for use in uses:
        env = added.setdefault(use.service, {})
        env[use.url_var] = endpoint.replace("$", "$$")
        env[use.model_var] = use.model.replace("$", "$$")
        if key:
            env[use.key_var] = "${" + KEY_CONFIG + "}"
    services = dict(project.services)
    for name, env in added.items():
        service = services[name]
        services[name] = dataclasses.replace(
            service, environment={**service.environment, **env})
    return dataclasses.replace(project, services=services)
