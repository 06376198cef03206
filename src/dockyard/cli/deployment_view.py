"""`dockyard deployments show`: one deployment's record as text (a pure function of it).

Sections: who ran it, when and from what; each service with its planned action, why, image
and outcome; each config's version (never a value); and the state timeline.
"""

from __future__ import annotations

from datetime import datetime

from dockyard.cli.tables import table
from dockyard.wire_models import DeploymentDetail, DeploymentRecordBody


def deployment_text(detail: DeploymentDetail) -> str:
    lines = [f"deployment  {detail.id}", f"project     {detail.project}",
             f"action      {_action(detail)}", f"status      {_status(detail)}",
             f"started     {_time(detail.created_at)}"]
    if detail.finished_at:
        lines.append(f"finished    {_time(detail.finished_at)}{_took(detail)}")
    lines.append(f"by          {_who(detail.record)}")
    lines.append(f"source      {_source(detail.record)}")
    options = _options(detail.record)
    if options:
        lines.append(f"options     {options}")
    out = "\n".join(lines) + "\n\n" + _services(detail)
    if detail.configs:
        out += "\n" + table(["CONFIG", "VERSION"], [
            [name, str(version)] for name, version in sorted(detail.configs.items())])
    if detail.events:
        out += "\n" + table(["TIME (UTC)", "SERVICE", "STATE", "REASON"], [
            [_time(e.at, precise=True), e.service, e.state, e.reason] for e in detail.events])
    for note in detail.notes:
        out += f"note: {note}\n"
    return out


def _action(detail: DeploymentDetail) -> str:
    of = detail.record.rollback_of
    return f"{detail.action} of {of}" if of else detail.action


def _status(detail: DeploymentDetail) -> str:
    record = detail.record
    if record.rolled_back_by:
        return f"{detail.status}, rolled back by {record.rolled_back_by}"
    return detail.status


def _who(record: DeploymentRecordBody) -> str:
    parts = [record.account or "?"]
    if record.user:
        parts.append(f"as {record.user}")
    versions = []
    if record.client_version:
        versions.append(f"client {record.client_version}")
    if record.server_version:
        versions.append(f"server {record.server_version}")
    if versions:
        parts.append(f"(dockyard {', '.join(versions)})")
    return " ".join(parts)


def _source(record: DeploymentRecordBody) -> str:
    if not record.git_commit:
        return "not a git checkout"
    text = f"git {record.git_commit[:12]}"
    if record.git_branch:
        text += f" on {record.git_branch}"
    if record.git_dirty:
        text += " (dirty: uncommitted changes)"
    return text


def _options(record: DeploymentRecordBody) -> str:
    return ", ".join(k if v is True else f"{k}={v}" for k, v in sorted(record.options.items()))


def _services(detail: DeploymentDetail) -> str:
    planned = {item.service: item for item in detail.plan or []}
    names = sorted(set(detail.compose.get("services") or {}) | set(planned)
                   | set(detail.images) | set(detail.outcome))
    rows = []
    for name in names:
        item = planned.get(name)
        image = detail.images.get(name)
        rows.append([name, item.action if item else "-",
                     ", ".join(item.reasons) if item else "-",
                     image.digest if image else "-", detail.outcome.get(name, "-")])
    heading = "" if detail.plan is not None else "(it never got as far as planning)\n"
    return heading + table(["SERVICE", "ACTION", "WHY", "IMAGE", "OUTCOME"], rows)


def _time(text: str, *, precise: bool = False) -> str:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return text
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if precise else \
        when.strftime("%Y-%m-%d %H:%M:%S")


def _took(detail: DeploymentDetail) -> str:
    try:
        seconds = (datetime.fromisoformat(detail.finished_at or "")
                   - datetime.fromisoformat(detail.created_at)).total_seconds()
    except ValueError:
        return ""
    return f" (took {seconds:.1f} s)"
