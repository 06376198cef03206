"""Model providers' variables, as Compose names them, for the server's endpoint (pure)."""

from __future__ import annotations

from pathlib import Path

from dockyard.compose import LoadOptions, load_project
from dockyard.compose.models import Project
from dockyard.runtime.model_env import (
    KEY_CONFIG,
    model_services,
    model_uses,
    with_model_environment,
)
from dockyard.runtime.specs import resolve_environment
from dockyard.server.model_endpoint import deployable, model_problems
from dockyard.server.settings import ServerSettings

PROJECT = """
name: chat
services:
  ai_runner:
    provider: {type: model, options: {model: ai/smollm2}}
  app:
    image: busybox
    depends_on: [ai_runner]
    environment: {AI_RUNNER_URL: "overridden", OWN: "x"}
  agent:
    image: busybox
    models:
      llm: {}
      embed-text: {endpoint_var: EMBED_AT, model_var: EMBED_NAME}
  plain: {image: busybox}
models:
  llm: {model: ai/qwen3}
  embed-text: {model: ai/mxbai}
"""


def load(tmp_path: Path, text: str = PROJECT) -> Project:
    (tmp_path / "compose.yaml").write_text(text)
    return load_project(LoadOptions(working_dir=str(tmp_path), environ={})).project


def test_each_use_gets_compose_s_variable_names(tmp_path: Path) -> None:
    project = load(tmp_path)
    uses = {(u.service, u.source): (u.url_var, u.model_var, u.key_var, u.model)
            for u in model_uses(project)}
    assert uses == {
        ("app", "ai_runner"): ("AI_RUNNER_URL", "AI_RUNNER_MODEL", "AI_RUNNER_API_KEY",
                               "ai/smollm2"),
        ("agent", "llm"): ("LLM_URL", "LLM_MODEL", "LLM_API_KEY", "ai/qwen3"),
        ("agent", "embed-text"): ("EMBED_AT", "EMBED_NAME", "EMBED_AT_API_KEY", "ai/mxbai"),
    }
    assert model_services(project) == ["agent", "ai_runner", "app"]


def test_the_variables_are_set_over_the_service_s_own_and_the_key_is_a_config(
        tmp_path: Path) -> None:
    project = load(tmp_path)
    out = with_model_environment(project, "http://llm.example:8080/v1/$x", key=True)
    env = resolve_environment(out.services["app"], {KEY_CONFIG: "sk-secret"})
    assert env == {"AI_RUNNER_URL": "http://llm.example:8080/v1/$x",
                   "AI_RUNNER_MODEL": "ai/smollm2", "AI_RUNNER_API_KEY": "sk-secret",
                   "OWN": "x"}
    assert out.services["plain"] == project.services["plain"]
    assert with_model_environment(project, None) is project
    without_key = with_model_environment(project, "http://e/v1/")
    assert "LLM_API_KEY" not in without_key.services["agent"].environment


def test_no_endpoint_refuses_naming_the_services_and_the_setting(tmp_path: Path) -> None:
    project = load(tmp_path)
    found = model_problems(ServerSettings(), project)
    assert [d.code for d in found] == ["model-endpoint-missing"]
    assert "agent, ai_runner, app use an AI model" in found[0].message
    assert "--model-endpoint" in (found[0].hint or "")
    assert model_problems(ServerSettings(model_endpoint="http://e/v1/"), project) == []
    other = load(tmp_path, "services:\n  db: {provider: {type: awesomecloud}}\n"
                 "  app: {image: busybox, depends_on: [db]}\n")
    assert [d.code for d in model_problems(ServerSettings(), other)] == [
        "provider-unsupported"]


def test_the_key_file_is_read_at_each_deployment(tmp_path: Path) -> None:
    key = tmp_path / "model.key"
    key.write_text("sk-one\n")
    settings = ServerSettings(model_endpoint="http://e/v1/", model_key_file=key)
    project = load(tmp_path)
    _, configs = deployable(settings, project, {"OTHER": "v"})
    assert configs == {"OTHER": "v", KEY_CONFIG: "sk-one"}
    key.write_text("sk-two")
    assert deployable(settings, project, {})[1] == {KEY_CONFIG: "sk-two"}
    key.unlink()
    assert [d.code for d in model_problems(settings, project)] == ["model-endpoint-missing"]
    assert "sk-" not in repr(ServerSettings(model_key="sk-hidden"))


def test_the_endpoint_is_an_http_url_and_the_key_comes_only_from_the_environment() -> None:
    import pytest

    from dockyard.errors import UsageError
    from dockyard.server.settings import settings_from

    settings = settings_from({"model_endpoint": "https://models.example/v1/"},
                             {"DOCKYARD_MODEL_KEY": "sk-env", "HOME": "/nonexistent"})
    assert (settings.model_endpoint, settings.model_key) == ("https://models.example/v1/",
                                                             "sk-env")
    with pytest.raises(UsageError, match="--model-endpoint"):
        settings_from({"model_endpoint": "models.example"}, {"HOME": "/nonexistent"})
