"""``docker-compose.yml`` is a valid Compose file and agrees with the project.

There is no Docker engine in CI, so the file is validated against the Compose Specification's
JSON Schema (``tests/data/compose-spec.schema.json``, see its ``.SOURCE.md``) after YAML parsing
and after ``${VAR:-default}`` interpolation, and its cross-references are checked: dependencies,
health checks, volumes, ``ODIA_`` variables against the live settings model, commands against
the live ``odia`` CLI, and the wiring of Kafka, Qdrant, vLLM and the adapter volume.

The opt-in ``sasl`` profile (a SASL_SSL broker with ACLs) is checked the same way with its overlay
``deploy/kafka-sasl/compose.sasl.yml`` merged in by Compose's rules, and its ACLs against
``docs/security.md`` and the topic and group names the code uses; its scripts run here with
stand-ins for the Kafka tools (ACLs) and with the local keytool (certificates).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import jsonschema
import pytest
import typer
import yaml
from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

from odia_stream.http_auth import is_loopback
from odia_stream.settings import OdiaSettings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.schema.json"
SCHEMA_NOTE = SCHEMA.with_name("compose-spec.schema.SOURCE.md")
SASL_DIR = ROOT / "deploy" / "kafka-sasl"
SASL_OVERLAY = SASL_DIR / "compose.sasl.yml"
ACLS_FILE = SASL_DIR / "acls.txt"
BROKER_PROPERTIES = SASL_DIR / "server.properties"
SECURITY_DOC = ROOT / "docs" / "security.md"
#: The services of a plain ``docker compose up`` (no profile): the stack as it always was.
DEFAULT_SERVICES = {"kafka", "qdrant", "vllm", "topics-init", "agents", "trainer", "serving", "dashboard"}
#: The ``sasl`` profile's services.
SASL_SERVICES = {"kafka-sasl-certs", "kafka-sasl", "kafka-sasl-acls"}
#: Each odia service's Kafka principal under the overlay (docs/security.md, "Per process").
SERVICE_PRINCIPALS = {
    "topics-init": "odia-topics-init",
    "agents": "odia-agents",
    "trainer": "odia-trainer",
    "serving": "odia-serving",
    "dashboard": "odia-dashboard",
}
#: The principal outside the stack: applications and ``odia replay``.
PRODUCER_PRINCIPAL = "odia-producer"

#: ``$$``, ``${...}`` or ``$NAME`` (Compose interpolation).
_VAR = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>.*))?$", re.DOTALL)


# ------------------------------------------------------------------------------ helpers
class InterpolationError(ValueError):
    """A ``${...}`` expression that Compose would refuse."""


def interpolate(value: Any, env: Mapping[str, str], used: set[str] | None = None) -> Any:
    """Compose-style interpolation of every string in ``value`` (keys too), as ``docker compose config``."""
    if isinstance(value, dict):
        return {interpolate(k, env, used): interpolate(v, env, used) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, used) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        if m.group("escaped"):
            return "$"
        if m.group("named"):
            name, op, arg = m.group("named"), None, ""
        else:
            parsed = _BRACED.match(m.group("braced"))
            if parsed is None:
                raise InterpolationError(f"invalid interpolation ${{{m.group('braced')}}}")
            name, op, arg = parsed.group("name"), parsed.group("op"), parsed.group("arg") or ""
        if used is not None:
            used.add(name)
        current = env.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if current is not None else arg
        if op in (":?", "?"):
            if current is None or (op == ":?" and not current):
                raise InterpolationError(f"required variable {name} is missing: {arg}")
            return current
        if op == ":+":
            return arg if current else ""
        if op == "+":
            return arg if current is not None else ""
        if current is None:
            raise InterpolationError(f"variable {name} has no default (docker compose would warn and use '')")
        return current

    return _VAR.sub(one, value)


def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    """The Compose file as YAML gives it (anchors and ``<<`` merge keys resolved)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), "a Compose file is a mapping"
    return doc


def schema_errors(doc: Mapping[str, Any]) -> list[str]:
    """Violations of the Compose Specification's JSON Schema, one line each."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    ]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def settings_field_problem(name: str) -> str | None:
    """Why ``name`` (``ODIA_A__B``) is no field of :class:`OdiaSettings`, or None when it is one."""
    if not name.startswith("ODIA_"):
        return f"{name} does not start with ODIA_"
    model: type[BaseModel] = OdiaSettings
    parts = name[len("ODIA_"):].lower().split("__")
    for i, part in enumerate(parts):
        fields = model.model_fields
        if part not in fields:
            where = "OdiaSettings" + "".join(f".{p}" for p in parts[:i])
            return f"{name}: {where} has no field {part!r} (fields: {', '.join(fields)})"
        nested = _model_of(fields[part].annotation)
        if i < len(parts) - 1:
            if nested is None:
                return f"{name}: {part!r} is not a nested settings group"
            model = nested
    return None


@contextmanager
def odia_environment(env: Mapping[str, str]) -> Iterator[None]:
    """The process environment with exactly these ``ODIA_`` variables."""
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.upper().startswith("ODIA_")]:
            mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        yield


def settings_under(env: Mapping[str, str]) -> OdiaSettings:
    """The settings a container with this environment builds (no ``.env`` file read)."""
    with odia_environment({k: v for k, v in env.items() if k.startswith("ODIA_")}):
        return OdiaSettings(_env_file=None)  # type: ignore[call-arg]


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a mapping (list form ``KEY=VALUE`` too)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def dockerfile_env() -> dict[str, str]:
    """``ENV`` of the Dockerfile (``KEY=VALUE`` pairs, continuation lines joined)."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in line[4:].split():
                key, eq, value = pair.partition("=")
                if eq:
                    env[key] = value
    return env


def container_env(service: Mapping[str, Any]) -> dict[str, str]:
    """What a container of an odia service sees: the image's ``ENV``, then the service's environment."""
    return {**dockerfile_env(), **environment_of(service)}


def odia_services(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Services built from this repository's Dockerfile."""
    return {name: s for name, s in doc["services"].items() if "build" in s}


def volume_mounts(service: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of each volume entry (short or long syntax)."""
    out = []
    for v in service.get("volumes") or ():
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) == 1:
                out.append(("", parts[0], False))
            else:
                out.append((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
        else:
            out.append((v.get("source", ""), v["target"], bool(v.get("read_only"))))
    return out


def cross_reference_problems(doc: Mapping[str, Any]) -> list[str]:
    """Dangling references between services, health checks and volumes."""
    problems: list[str] = []
    services = doc.get("services") or {}
    declared = set(doc.get("volumes") or {})
    used: set[str] = set()
    for name, service in services.items():
        deps = service.get("depends_on") or {}
        deps = {d: {"condition": "service_started"} for d in deps} if isinstance(deps, list) else deps
        for dep, spec in deps.items():
            if dep not in services:
                problems.append(f"{name}: depends_on unknown service {dep!r}")
                continue
            if dep == name:
                problems.append(f"{name}: depends on itself")
            condition = spec.get("condition")
            if condition == "service_healthy" and "healthcheck" not in services[dep]:
                problems.append(f"{name}: waits for {dep} to be healthy, but {dep} has no healthcheck")
            if condition == "service_completed_successfully" and services[dep].get("restart", "no") != "no":
                problems.append(f"{name}: waits for {dep} to complete, but {dep} restarts")
        for source, target, _ in volume_mounts(service):
            if source and not source.startswith((".", "/", "~", "$")):
                used.add(source)
                if source not in declared:
                    problems.append(f"{name}: volume {source!r} (at {target}) is not declared under volumes")
    problems.extend(f"volume {v!r} is declared but no service mounts it" for v in sorted(declared - used))
    return problems


def environment_problems(doc: Mapping[str, Any]) -> list[str]:
    """``ODIA_`` variables that are no settings field, or whose values the settings refuse."""
    problems: list[str] = []
    for name, service in odia_services(doc).items():
        env = container_env(service)
        for key in env:
            if key.upper().startswith("ODIA_") and (p := settings_field_problem(key)):
                problems.append(f"{name}: {p}")
        try:
            settings_under(env)
        except (ValidationError, SettingsError) as exc:
            problems.append(f"{name}: its ODIA_ environment does not load: {exc}")
    return problems


def cli_command_problem(args: list[str]) -> str | None:
    """Why ``odia <args>`` is no runnable command of the live CLI, or None when it is one."""
    from odia.cli.main import app

    # typer vendors click, so groups are recognised by what they do, not by class.
    command: Any = typer.main.get_command(app)
    ctx = command.context_class(command, info_name="odia")
    rest = list(args)
    while hasattr(command, "list_commands"):
        if not rest or rest[0].startswith("-"):
            return f"odia {' '.join(args)}: names a command group, not a command"
        token = rest.pop(0)
        sub = command.get_command(ctx, token)
        if sub is None:
            return f"odia {' '.join(args)}: no command {token!r} (have: {', '.join(command.list_commands(ctx))})"
        command = sub
        ctx = command.context_class(command, info_name=token, parent=ctx)
    try:
        command.parse_args(ctx, rest)
    except Exception as exc:  # click's UsageError (typer's vendored click)
        if not hasattr(exc, "format_message"):
            raise
        return f"odia {' '.join(args)}: {exc.format_message()}"
    return None


# ------------------------------------------------------------------------------ the sasl profile
class _Reset:
    """Compose's ``!reset`` tag: the attribute is removed from the merged model."""

    def __repr__(self) -> str:
        return "!reset"


RESET = _Reset()


@dataclass(frozen=True)
class Override:
    """Compose's ``!override`` tag: the value replaces the merged one instead of merging into it."""

    value: Any


class ComposeLoader(yaml.SafeLoader):
    """YAML as Compose reads it: the ``!reset`` and ``!override`` tags of override files."""


def _construct_override(loader: yaml.SafeLoader, node: yaml.Node) -> Override:
    if isinstance(node, yaml.MappingNode):
        return Override(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    return Override(loader.construct_scalar(node))  # type: ignore[arg-type]


ComposeLoader.add_constructor("!reset", lambda loader, node: RESET)
ComposeLoader.add_constructor("!override", _construct_override)


def load_overlay(path: Path = SASL_OVERLAY) -> dict[str, Any]:
    """An override file as parsed (``!reset`` / ``!override`` kept as markers)."""
    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=ComposeLoader)  # a SafeLoader with two tags
    assert isinstance(doc, dict), "a Compose file is a mapping"
    return doc


#: Service attributes whose sequences the later file replaces (Compose's merge rules).
_REPLACED_SEQUENCES = {("command",), ("entrypoint",), ("healthcheck", "test")}
#: Attributes the overlay may set on a service: the merge below implements Compose's rules for these.
_MERGED_ATTRIBUTES = {"environment", "volumes", "depends_on", "profiles"}


def _resolved(value: Any) -> Any:
    """``value`` with its markers applied (an attribute new to the model: nothing to merge into)."""
    if isinstance(value, Override):
        return copy.deepcopy(value.value)
    if isinstance(value, dict):
        return {k: _resolved(v) for k, v in value.items() if v is not RESET}
    if isinstance(value, list):
        return [_resolved(v) for v in value if v is not RESET]
    return value


def _volume_target(entry: Any) -> str:
    return volume_mounts({"volumes": [entry]})[0][1]


def merge_compose(base: Any, over: Any, path: tuple[str, ...] = ()) -> Any:
    """``over`` merged into ``base`` as Compose merges files: mappings key by key, sequences appended
    except ``command``/``entrypoint``/``healthcheck.test`` (replaced) and service ``volumes``
    (unique by target), ``!reset`` removes, ``!override`` replaces, a scalar replaces."""
    if isinstance(over, Override):
        return copy.deepcopy(over.value)
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            if value is RESET:
                out.pop(key, None)
            elif key in base:
                out[key] = merge_compose(base[key], value, (*path, str(key)))
            else:
                out[key] = _resolved(value)
        return out
    if isinstance(base, list) and isinstance(over, list):
        attribute = path[2:] if path[:1] == ("services",) else path
        if attribute in _REPLACED_SEQUENCES:
            return _resolved(over)
        if attribute == ("volumes",):
            targets = {_volume_target(v) for v in over}
            return [v for v in base if _volume_target(v) not in targets] + _resolved(over)
        return base + _resolved(over)
    if isinstance(base, (dict, list)) or isinstance(over, (dict, list)):
        raise TypeError(f"{'/'.join(path)}: cannot merge {type(over).__name__} into {type(base).__name__}")
    return over


def active_services(doc: Mapping[str, Any], profiles: set[str]) -> set[str]:
    """The services Compose starts with these profiles enabled (no profile: always)."""
    return {name for name, s in doc["services"].items() if not s.get("profiles") or set(s["profiles"]) & profiles}


def profile_problems(doc: Mapping[str, Any], profiles: set[str]) -> list[str]:
    """Active services that depend on a service these profiles leave out (Compose refuses to start them)."""
    active = active_services(doc, profiles)
    return [
        f"{name} depends on {dep}, which is not started with profiles {sorted(profiles)}"
        for name in sorted(active)
        for dep in doc["services"][name].get("depends_on") or {}
        if dep not in active
    ]


def password_variable(principal: str) -> str:
    """The Compose variable holding ``principal``'s SCRAM password (as ``passwords.sh``)."""
    return "SASL_PASSWORD_" + principal.removeprefix("odia-").replace("-", "_").upper()


def sasl_passwords(principals: set[str]) -> dict[str, str]:
    """A valid, distinct password for the admin and each principal (what ``new-passwords.sh`` makes)."""
    names = ["SASL_ADMIN_PASSWORD", *sorted(password_variable(p) for p in principals)]
    return {name: hashlib.sha256(name.encode()).hexdigest()[:32] for name in names}


class Grant(NamedTuple):
    """One Kafka ACL line: ``operations`` allowed to ``principal`` on a resource."""

    principal: str
    resource: str  # topic | group | cluster | transactional-id
    pattern: str  # literal | prefixed
    name: str
    operations: frozenset[str]


#: Kafka's ACL operations as kafka-acls.sh names them.
KAFKA_OPERATIONS = {"Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction", "DescribeConfigs",
                    "AlterConfigs", "IdempotentWrite", "All"}


def acls_file_grants(path: Path = ACLS_FILE) -> list[Grant]:
    """The grants of ``acls.txt`` (``principal resource pattern name Op,Op``)."""
    grants = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        principal, resource, pattern, name, operations = line.split()
        grants.append(Grant(principal, resource, pattern, name, frozenset(operations.split(","))))
    return grants


def markdown_table(text: str, header_start: str) -> list[list[str]]:
    """The rows (cells without backticks) of the Markdown table whose header starts with ``header_start``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().replace("`", "") for cell in line.strip().strip("|").split("|")])
    return rows


def docs_acl_grants(path: Path = SECURITY_DOC) -> list[Grant]:
    """The grants of docs/security.md's "Kafka ACLs" table."""
    rows = markdown_table(path.read_text(encoding="utf-8"), "| principal | resource | pattern | name | operations |")
    return [Grant(r[0], r[1], r[2], r[3], frozenset(op.strip() for op in r[4].split(","))) for r in rows]


def docs_process_principals(path: Path = SECURITY_DOC) -> dict[str, str]:
    """Process (compose service or role) → principal, from docs/security.md's "Per process" table."""
    rows = markdown_table(path.read_text(encoding="utf-8"), "| process (compose service, command) | principal |")
    return {r[0].split(" (")[0]: r[1] for r in rows}


def expected_grants(settings: OdiaSettings) -> set[Grant]:
    """The ACLs each process needs, from the code (docs/security.md, "Where each fact comes from"),
    with the names the settings give: the one list the docs and acls.txt must match."""
    t, app = settings.topics, settings.app_id
    every = [spec.name for spec in t.all()]
    grants: set[Grant] = set()

    def topics(principal: str, names: list[str], *operations: str) -> None:
        grants.update(Grant(principal, "topic", "literal", n, frozenset(operations)) for n in names)

    def rest(principal: str, used: list[str]) -> None:
        """Describe on every topic it neither reads nor writes: ``ensure_topics`` at start."""
        topics(principal, [n for n in every if n not in used], "Describe")

    def group(principal: str, pattern: str, name: str, operation: str) -> None:
        grants.add(Grant(principal, "group", pattern, name, frozenset({operation})))

    # odia topics create: kafka_runtime/topics.py ensure_topics lists and creates.
    topics("odia-topics-init", every, "Create", "Describe")
    # agents: Faust group = app id on fc-logs; DLQ, cluster state (and summaries), triggers out.
    topics("odia-agents", [t.fc_logs.name], "Read")
    topics("odia-agents", [t.dead_letters.name, t.cluster_state.name, t.retrain_triggers.name], "Write")
    rest("odia-agents", [t.fc_logs.name, t.dead_letters.name, t.cluster_state.name, t.retrain_triggers.name])
    group("odia-agents", "literal", app, "Read")
    # trainer: triggers in (group <app>-trainer), model updates and dead letters out.
    topics("odia-trainer", [t.retrain_triggers.name], "Read")
    topics("odia-trainer", [t.model_updates.name, t.dead_letters.name], "Write")
    rest("odia-trainer", [t.retrain_triggers.name, t.model_updates.name, t.dead_letters.name])
    group("odia-trainer", "literal", f"{app}-trainer", "Read")
    # serving: requests (group <app>-serving) and model updates (assigned) in, responses out.
    topics("odia-serving", [t.requests.name, t.model_updates.name], "Read")
    topics("odia-serving", [t.responses.name], "Write")
    rest("odia-serving", [t.requests.name, t.model_updates.name, t.responses.name])
    group("odia-serving", "literal", f"{app}-serving", "Read")
    group("odia-serving", "prefixed", f"{app}-serving-updates-", "Describe")
    # dashboard: three topics by assignment, random group never joined.
    topics("odia-dashboard", [t.cluster_state.name, t.model_updates.name, t.responses.name], "Read")
    group("odia-dashboard", "prefixed", "odia-dashboard-", "Describe")
    # producer: FC logs and requests.
    topics(PRODUCER_PRINCIPAL, [t.fc_logs.name, t.requests.name], "Write")
    return grants


def read_properties(path: Path = BROKER_PROPERTIES) -> dict[str, str]:
    """A Java properties file of ``key=value`` lines (comments and blank lines skipped)."""
    props: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith(("#", "!")):
            key, _, value = line.partition("=")
            assert key.strip() not in props, f"{key} set twice"
            props[key.strip()] = value.strip()
    return props


def run_acls_script(
    tmp_path: Path, env: Mapping[str, str]
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """``acls.sh`` with stand-ins for kafka-configs.sh and kafka-acls.sh that record their arguments
    (one NUL-separated line per call); returns the run and the calls."""
    tools = tmp_path / "bin"
    tools.mkdir()
    log = tmp_path / "calls"
    for tool in ("kafka-configs.sh", "kafka-acls.sh"):
        stub = tools / tool
        stub.write_text(f'#!/usr/bin/env bash\n{{ printf "%s\\0" "{tool}" "$@"; echo; }} >> "{log}"\n')
        stub.chmod(0o755)
    run = subprocess.run(
        ["bash", str(SASL_DIR / "acls.sh")], capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KAFKA_BIN": str(tools),
             "KAFKA_CA_FILE": str(tmp_path / "ca.crt"), "TMPDIR": str(tmp_path), **env},
    )
    calls = [line.rstrip("\0").split("\0") for line in log.read_text().splitlines()] if log.exists() else []
    return run, calls


def _option_values(args: list[str], option: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == option]


def acl_calls_as_grants(calls: list[list[str]]) -> set[Grant]:
    """The grants kafka-acls.sh ``--add`` calls make (each ``--topic``/``--group`` a resource)."""
    grants = set()
    for call in calls:
        if call[0] != "kafka-acls.sh" or "--add" not in call:
            continue
        principal = _option_values(call, "--allow-principal")[0].removeprefix("User:")
        operations = frozenset(_option_values(call, "--operation"))
        pattern = _option_values(call, "--resource-pattern-type")[0]
        for resource in ("topic", "group", "transactional-id"):
            names = _option_values(call, f"--{resource}")
            grants.update(Grant(principal, resource, pattern, n, operations) for n in names)
        if "--cluster" in call:
            grants.add(Grant(principal, "cluster", pattern, "kafka-cluster", operations))
    return grants


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """docker-compose.yml as parsed."""
    return load_compose()


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    """docker-compose.yml interpolated with an empty environment (every variable's default)."""
    return interpolate(raw, {})


@pytest.fixture(scope="module")
def principals() -> set[str]:
    """Every principal of deploy/kafka-sasl/acls.txt."""
    return {g.principal for g in acls_file_grants()}


@pytest.fixture(scope="module")
def passwords(principals: set[str]) -> dict[str, str]:
    """The sasl profile's password variables, each set."""
    return sasl_passwords(principals)


@pytest.fixture(scope="module")
def sasl_raw(raw: dict[str, Any]) -> dict[str, Any]:
    """docker-compose.yml with deploy/kafka-sasl/compose.sasl.yml merged in (not interpolated)."""
    return merge_compose(raw, load_overlay())


@pytest.fixture(scope="module")
def sasl(sasl_raw: dict[str, Any], passwords: dict[str, str]) -> dict[str, Any]:
    """The merged stack as ``docker compose -f docker-compose.yml -f …/compose.sasl.yml`` sees it
    with the passwords set in .env."""
    return interpolate(sasl_raw, passwords)


# ------------------------------------------------------------------------------ the schema
def test_schema_is_the_recorded_copy() -> None:
    digest = hashlib.sha256(SCHEMA.read_bytes()).hexdigest()
    recorded = re.search(r"sha256: ([0-9a-f]{64})", SCHEMA_NOTE.read_text(encoding="utf-8"))
    assert recorded and recorded.group(1) == digest, "update compose-spec.schema.SOURCE.md with the new copy"
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["title"] == "Compose Specification"
    jsonschema.Draft7Validator.check_schema(schema)


def test_compose_file_validates_against_the_compose_spec(raw: dict[str, Any], compose: dict[str, Any]) -> None:
    assert schema_errors(raw) == []
    assert schema_errors(compose) == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("services", "agents", "replicas"), 2, "'replicas' does not match any of the regexes"),
        (("services", "agents", "depends_on", "qdrant", "condition"), "service_ready", "is not valid under any"),
        (("services", "serving", "deploy", "replicas"), [2], "is not of type"),
        (("services", "kafka", "healthcheck", "interval"), 10, "is not of type"),
        (("volumes", "bad name!"), None, "does not match any of the regexes"),
        (("servces",), {}, "'servces' does not match any of the regexes"),
    ],
)
def test_the_schema_check_catches_mistakes(compose: dict[str, Any], path: tuple[str, ...], value: Any, expected: str) -> None:
    broken = copy.deepcopy(compose)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    errors = schema_errors(broken)
    assert errors and any(expected in e for e in errors), errors


# ------------------------------------------------------------------------------ interpolation
def test_every_variable_has_a_default_and_odia_names_are_settings(raw: dict[str, Any]) -> None:
    used: set[str] = set()
    interpolate(raw, {}, used)  # raises for a variable without a default
    assert {"SMALL_BASE_MODEL", "SERVING_REPLICAS", "AGENTS_REPLICAS"} <= used
    assert [p for name in sorted(used) if name.startswith("ODIA_") and (p := settings_field_problem(name))] == []
    # Variables reach the file: the serving count is a replica count.
    assert interpolate(raw, {"SERVING_REPLICAS": "6"})["services"]["serving"]["deploy"]["replicas"] == "6"


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": ""}, "x"),
        ("${A-x}", {"A": ""}, ""),
        ("${A}/b", {"A": "a"}, "a/b"),
        ("$A-$$B", {"A": "1"}, "1-$B"),
        ("${A:+on}", {"A": "1"}, "on"),
    ],
)
def test_interpolation_follows_compose(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(text, env) == expected


@pytest.mark.parametrize("text", ["${A}", "${A:?set A}", "${A?}", "${1A}"])
def test_interpolation_refuses_what_compose_refuses(text: str) -> None:
    with pytest.raises(InterpolationError):
        interpolate(text, {})


# ------------------------------------------------------------------------------ cross-references
def test_services_volumes_and_health_checks_cross_reference(compose: dict[str, Any]) -> None:
    assert cross_reference_problems(compose) == []


def test_the_cross_reference_check_catches_mistakes(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["agents"]["depends_on"]["zookeeper"] = {"condition": "service_started"}
    broken["services"]["agents"]["volumes"].append("scratch:/scratch")
    broken["services"]["serving"]["depends_on"]["qdrant"] = {"condition": "service_healthy"}
    broken["services"]["trainer"]["depends_on"]["agents"] = {"condition": "service_completed_successfully"}
    del broken["services"]["dashboard"]
    broken["volumes"]["unused"] = None
    problems = "\n".join(cross_reference_problems(broken))
    for needle in ("unknown service 'zookeeper'", "'scratch'", "qdrant has no healthcheck",
                   "agents restarts", "'unused' is declared"):
        assert needle in problems, problems


def test_odia_variables_are_settings_fields_and_load(compose: dict[str, Any]) -> None:
    assert environment_problems(compose) == []


def test_the_environment_check_catches_mistakes(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    env = broken["services"]["agents"]["environment"] = dict(broken["services"]["agents"]["environment"])
    env["ODIA_KAFKA__BOOTSTRAP"] = "kafka:9092"  # misspelt field
    env["ODIA_STORE__URL__HOST"] = "qdrant"  # nesting into a plain field
    env["ODIA_STORE__BACKEND"] = "milvus"  # a value the settings refuse
    problems = "\n".join(environment_problems(broken))
    assert "no field 'bootstrap'" in problems
    assert "'url' is not a nested settings group" in problems
    assert "does not load" in problems and "backend" in problems


def test_odia_services_are_one_image_running_real_commands(compose: dict[str, Any]) -> None:
    services = odia_services(compose)
    assert {"topics-init", "agents", "trainer", "serving"} <= set(services)
    images = set()
    for name, service in services.items():
        build = service["build"]
        context, dockerfile = (build, "Dockerfile") if isinstance(build, str) else (
            build.get("context", "."), build.get("dockerfile", "Dockerfile"))
        assert (ROOT / context / dockerfile).resolve() == DOCKERFILE, name
        images.add(service.get("image"))
        assert isinstance(service["command"], list), f"{name}: give the command as a list"
    assert len(images) == 1
    assert services["topics-init"]["command"] == ["topics", "create"]
    assert services["agents"]["command"] == ["agents", "run"]
    assert services["trainer"]["command"] == ["trainer", "run"]
    assert services["serving"]["command"] == ["serve", "run"]
    problems = [p for s in services.values() if (p := cli_command_problem(list(s["command"])))]
    assert problems == []


def test_the_command_check_catches_mistakes() -> None:
    assert cli_command_problem(["topics", "create"]) is None
    assert "no command 'migrate'" in (cli_command_problem(["topics", "migrate"]) or "")
    assert "command group" in (cli_command_problem(["topics"]) or "")
    assert "No such option" in (cli_command_problem(["agents", "run", "--colour", "red"]) or "")


def test_dockerfile_installs_every_package_and_runs_odia() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    for package in packages:
        assert re.search(rf"^COPY {package} \./{package}$", text, re.MULTILINE), f"Dockerfile does not copy {package}/"
    assert re.search(r'^ENTRYPOINT \["odia"\]$', text, re.MULTILINE)
    assert "torch==2.13.0" in text  # the CPU build first, as in scripts and CI


# ------------------------------------------------------------------------------ the production shape
def _host_port(address: str) -> tuple[str, int | None]:
    parts = urlsplit(address if "//" in address else f"//{address}")
    return parts.hostname or "", parts.port


def test_the_stack_is_wired_as_designed(compose: dict[str, Any]) -> None:
    services = compose["services"]
    kafka, qdrant, vllm = services["kafka"], services["qdrant"], services["vllm"]
    # Apache Kafka in KRaft mode, one node that is broker and controller, no ZooKeeper.
    assert kafka["image"].startswith("apache/kafka:")
    kenv = environment_of(kafka)
    assert set(kenv["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in k for k in kenv)
    assert kenv["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # topics-init creates them with their partitions
    assert qdrant["image"].startswith("qdrant/qdrant:")
    # vLLM's OpenAI server with LoRA, runtime adapter loading, the adapters volume.
    assert vllm["image"].startswith("vllm/vllm-openai:")
    assert "--enable-lora" in vllm["command"]
    assert environment_of(vllm)["VLLM_ALLOW_RUNTIME_LORA_UPDATING"].lower() == "true"

    odia = odia_services(compose)
    per_service = {name: settings_under(container_env(s)) for name, s in odia.items()}
    for name, s in per_service.items():
        assert {_host_port(a)[0] for a in s.kafka.bootstrap_servers.split(",")} == {"kafka"}, name
        assert s.store.backend == "qdrant" and _host_port(s.store.url or "")[0] == "qdrant", name
        assert _host_port(s.vllm.server_url or "")[0] == "vllm", name
    # Everyone agrees on topics and partitions (Faust refuses a mismatch).
    assert len({json.dumps(s.topics.model_dump(), sort_keys=True) for s in per_service.values()}) == 1

    # The small generator: vLLM serves the base model the trainer fine-tunes.
    trainer = per_service["trainer"]
    assert vllm["command"][0] == trainer.generator.base_model
    # Adapters: the trainer writes them where vLLM and serving read them, under the same path.
    mounts = {name: {src: (target, ro) for src, target, ro in volume_mounts(services[name])}
              for name in ("trainer", "vllm", "serving")}
    assert mounts["trainer"]["adapters"] == (trainer.trainer.adapter_registry, False)
    assert mounts["vllm"]["adapters"] == (trainer.trainer.adapter_registry, True)
    assert mounts["serving"]["adapters"][0] == trainer.trainer.adapter_registry
    # The trainer reads the learner's state where the agents keep it.
    agents_state = {src: target for src, target, _ in volume_mounts(services["agents"])}["agents-state"]
    assert Path(agents_state) == per_service["agents"].state_dir
    assert {src: target for src, target, _ in volume_mounts(services["trainer"])}["agents-state"] == agents_state

    # Scaling is a replica count, bounded by the partitions of the topic each one consumes.
    for name, topic in (("agents", "fc_logs"), ("serving", "requests")):
        replicas = int(services[name]["deploy"]["replicas"])
        partitions = getattr(per_service[name].topics, topic).partitions
        assert 1 <= replicas <= partitions, (name, replicas, partitions)
    assert int(services["serving"]["deploy"]["replicas"]) >= 2


def test_the_dashboard_token_is_documented_where_the_stack_exposes_it(compose: dict[str, Any]) -> None:
    # An endpoint bound beyond loopback refuses to start without its token: the file must say where it goes.
    header = COMPOSE.read_text(encoding="utf-8").split("\nname:", 1)[0]
    for name, service in odia_services(compose).items():
        env = container_env(service)
        s = settings_under(env)
        for host, token, variable in (
            (s.dashboard.host, s.dashboard.token, "ODIA_DASHBOARD__TOKEN"),
            (s.serving.metrics_host, s.serving.metrics_token, "ODIA_SERVING__METRICS_TOKEN"),
            (s.ingest.metrics_host, s.ingest.metrics_token, "ODIA_INGEST__METRICS_TOKEN"),
        ):
            if not is_loopback(host) and token is None:
                assert variable in header, f"{name} listens on {host} without {variable}: say where it goes"
    assert not is_loopback(settings_under(container_env(compose["services"]["dashboard"])).dashboard.host)


# ------------------------------------------------------------------------------ the sasl profile
def test_a_plain_up_starts_the_stack_as_before(compose: dict[str, Any]) -> None:
    assert active_services(compose, set()) == DEFAULT_SERVICES
    assert profile_problems(compose, set()) == []
    for name in SASL_SERVICES:
        assert compose["services"][name]["profiles"] == ["sasl"], name
    # The default services are untouched by the profile: PLAINTEXT to kafka:9092.
    for name, service in odia_services(compose).items():
        assert "profiles" not in service, name
        k = settings_under(container_env(service)).kafka
        assert (k.security_protocol, k.bootstrap_servers, k.sasl_username) == ("PLAINTEXT", "kafka:9092", None), name
    # --profile sasl without the overlay: both brokers, nothing missing.
    assert active_services(compose, {"sasl"}) == DEFAULT_SERVICES | SASL_SERVICES
    assert profile_problems(compose, {"sasl"}) == []


def test_the_sasl_stack_validates_and_cross_references(sasl_raw: dict[str, Any], sasl: dict[str, Any]) -> None:
    overlay = load_overlay()
    for name, service in overlay["services"].items():
        assert name in sasl_raw["services"], f"the overlay names a service the stack lacks: {name}"
        assert set(service) <= _MERGED_ATTRIBUTES, f"{name}: merge rules for {set(service) - _MERGED_ATTRIBUTES}?"
    assert schema_errors(sasl_raw) == []
    assert schema_errors(sasl) == []
    assert cross_reference_problems(sasl) == []
    assert environment_problems(sasl) == []
    # With the profile: everything but the plaintext broker, which nothing needs any more.
    assert active_services(sasl, {"sasl"}) == (DEFAULT_SERVICES - {"kafka"}) | SASL_SERVICES
    assert profile_problems(sasl, {"sasl"}) == []
    # The overlay without the profile is refused by Compose, not half started.
    assert any("kafka-sasl-acls" in p for p in profile_problems(sasl, set()))


def test_the_profile_check_catches_mistakes(sasl_raw: dict[str, Any], passwords: dict[str, str]) -> None:
    broken = copy.deepcopy(sasl_raw)
    broken["services"]["topics-init"]["depends_on"]["kafka"] = {"condition": "service_healthy"}
    broken["services"]["agents"]["profiles"] = ["sasl"]
    problems = "\n".join(profile_problems(interpolate(broken, passwords), {"sasl"}))
    assert "topics-init depends on kafka" in problems
    assert "dashboard depends on topics-init" not in problems
    assert "trainer depends on agents" not in problems  # agents is active under the sasl profile
    assert "trainer depends on agents" in "\n".join(profile_problems(interpolate(broken, passwords), set()))


def test_the_merge_follows_compose() -> None:
    base = {"services": {"a": {"environment": {"X": "1", "Y": "2"}, "command": ["run"], "dns": ["1.1.1.1"],
                               "volumes": ["data:/data", "logs:/logs:ro"], "depends_on": {"b": {}, "c": {}}}}}
    over = {"services": {"a": {"environment": {"Y": "3", "Z": "4"}, "command": ["serve"], "dns": ["8.8.8.8"],
                               "volumes": ["other:/logs:ro"], "depends_on": {"b": RESET, "d": {}},
                               "healthcheck": {"test": ["CMD", "true"]}}}}
    a = merge_compose(base, over)["services"]["a"]
    assert a["environment"] == {"X": "1", "Y": "3", "Z": "4"}
    assert a["command"] == ["serve"] and a["dns"] == ["1.1.1.1", "8.8.8.8"]
    assert a["volumes"] == ["data:/data", "other:/logs:ro"]
    assert a["depends_on"] == {"c": {}, "d": {}}
    replaced = merge_compose(base, {"services": {"a": {"dns": Override(["9.9.9.9"])}}})
    assert replaced["services"]["a"]["dns"] == ["9.9.9.9"]
    doc = yaml.load("a: !reset null\nb: !override [1]\n", Loader=ComposeLoader)
    assert doc == {"a": RESET, "b": Override([1])}


def test_the_overlay_puts_each_odia_process_on_its_own_user(sasl: dict[str, Any], passwords: dict[str, str]) -> None:
    props = read_properties()
    advertised = props["advertised.listeners"]
    assert advertised.startswith("SASL_SSL://")
    broker_host, broker_port = _host_port(advertised.removeprefix("SASL_SSL://"))
    assert sasl["services"]["kafka-sasl"]["hostname"] == broker_host
    certs = sasl["services"]["kafka-sasl-certs"]
    certs_ca = {target for src, target, _ in volume_mounts(certs) if src == "kafka-sasl-ca"}
    assert certs_ca == {"/etc/odia/kafka-tls"}  # where certs.sh writes ca.crt (KAFKA_CA_DIR)
    odia = odia_services(sasl)
    assert set(odia) == set(SERVICE_PRINCIPALS)
    users = {}
    for name, service in odia.items():
        k = settings_under(container_env(service)).kafka
        assert k.bootstrap_servers == f"{broker_host}:{broker_port}", name
        assert (k.security_protocol, k.sasl_mechanism) == ("SASL_SSL", props["sasl.enabled.mechanisms"]), name
        assert k.ssl_check_hostname, f"{name}: the broker's host name must be verified"
        assert k.ssl_cert_file is None, name  # SCRAM, not mutual TLS
        users[name] = k.sasl_username
        assert k.sasl_password is not None
        assert k.sasl_password.get_secret_value() == passwords[password_variable(k.sasl_username or "")], name
        ca = {(src, target, ro) for src, target, ro in volume_mounts(service) if src == "kafka-sasl-ca"}
        ca_dir = str(Path(k.ssl_ca_file or "/").parent)
        assert ca == {("kafka-sasl-ca", ca_dir, True)}, f"{name}: the CA volume must be at {ca_dir}, read-only"
    assert users == SERVICE_PRINCIPALS
    assert len(set(users.values())) == len(users)
    # The ACL service creates every one of these users, and the producer's.
    assert set(SERVICE_PRINCIPALS.values()) | {PRODUCER_PRINCIPAL} == {g.principal for g in acls_file_grants()}


def test_no_password_is_written_in_the_compose_files(raw: dict[str, Any], principals: set[str]) -> None:
    overlay = load_overlay()
    whole = r"\$\{[A-Z0-9_]+(:-|:\?[^}]*)?\}"
    for doc in (raw, overlay):
        for name, service in doc["services"].items():
            for key, value in environment_of(service).items():
                if "PASSWORD" in key or "SECRET" in key or "TOKEN" in key:
                    assert re.fullmatch(whole, value), f"{name}: {key} must come from a variable, not {value!r}"
    # The overlay refuses to run without the passwords; the default file needs none of them.
    with pytest.raises(InterpolationError, match="SASL_PASSWORD_"):
        interpolate(overlay, {})
    used: set[str] = set()
    interpolate(raw, {}, used)
    assert {"SASL_ADMIN_PASSWORD"} | {password_variable(p) for p in principals} <= used
    acls_env = environment_of(raw["services"]["kafka-sasl-acls"])
    assert set(acls_env) == {"SASL_ADMIN_PASSWORD"} | {password_variable(p) for p in principals}
    assert set(environment_of(raw["services"]["kafka-sasl"])) == {"SASL_ADMIN_PASSWORD"}
    # Nothing secret in the broker's configuration either: broker.sh adds it at start.
    assert not [k for k in read_properties() if "password" in k or "jaas" in k]


def test_the_broker_authenticates_and_authorises_everything(compose: dict[str, Any], principals: set[str]) -> None:
    props = read_properties()
    assert props["process.roles"] == "broker,controller"
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["auto.create.topics.enable"] == "false"
    super_users = set(props["super.users"].split(";"))
    assert super_users == {"User:CN=kafka-sasl", "User:odia-admin"}
    assert not super_users & {f"User:{p}" for p in principals}, "no odia process is a super user"
    # Every listener authenticates: SASL_SSL for clients, mutual TLS for the controller.
    protocols = dict(item.split(":") for item in props["listener.security.protocol.map"].split(","))
    listeners = [item.split("://")[0] for item in props["listeners"].split(",")]
    assert set(listeners) == set(protocols)
    assert {protocols[name] for name in listeners} <= {"SASL_SSL", "SSL"}
    for name in listeners:
        if protocols[name] == "SSL":
            assert props.get(f"listener.name.{name.lower()}.ssl.client.auth") == "required", name
    assert props["controller.listener.names"] in listeners
    assert protocols[props["inter.broker.listener.name"]] == "SASL_SSL"
    assert props["sasl.enabled.mechanisms"] == props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert props["ssl.endpoint.identification.algorithm"] == "https"
    # Its key material comes from the certs volume, read-only; the health check speaks SASL_SSL.
    broker = compose["services"]["kafka-sasl"]
    mounts = {target: (src, ro) for src, target, ro in volume_mounts(broker)}
    for key in ("ssl.keystore.location", "ssl.truststore.location"):
        assert mounts[str(Path(props[key]).parent)] == ("kafka-sasl-secrets", True), key
    certs = {target: src for src, target, _ in volume_mounts(compose["services"]["kafka-sasl-certs"])}
    assert certs[str(Path(props["ssl.keystore.location"]).parent)] == "kafka-sasl-secrets"
    assert "kafka-sasl:9094" in " ".join(broker["healthcheck"]["test"])
    assert broker["image"] == compose["services"]["kafka"]["image"]


def test_the_scripts_are_mounted_and_parse(compose: dict[str, Any]) -> None:
    for name in sorted(SASL_SERVICES):
        service = compose["services"][name]
        assert service["image"] == compose["services"]["kafka"]["image"], name
        assert service["command"][0] == "bash" and service["command"][1].startswith("/opt/odia-kafka/"), name
        assert ("./deploy/kafka-sasl", "/opt/odia-kafka", True) in volume_mounts(service), name
        assert (SASL_DIR / Path(service["command"][1]).name).is_file(), name
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    for script in sorted(SASL_DIR.glob("*.sh")):
        run = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
        assert run.returncode == 0, f"{script.name}: {run.stderr}"


def test_the_acls_are_those_of_the_docs_and_the_code() -> None:
    in_file = acls_file_grants()
    in_docs = docs_acl_grants()
    assert len(set(in_file)) == len(in_file), "acls.txt lists a grant twice"
    assert set(in_docs) == set(in_file), (set(in_docs) ^ set(in_file))
    from_code = expected_grants(OdiaSettings(_env_file=None))  # type: ignore[call-arg]
    assert set(in_file) == from_code, set(in_file) ^ from_code
    for grant in in_file:
        assert grant.operations <= KAFKA_OPERATIONS, grant
        assert grant.resource in {"topic", "group", "cluster", "transactional-id"}, grant
        assert grant.pattern in {"literal", "prefixed"}, grant
        assert "*" not in grant.name, grant
    # Every process of the docs' table has its grants, and nobody else.
    processes = docs_process_principals()
    assert {p: processes[p] for p in SERVICE_PRINCIPALS} == SERVICE_PRINCIPALS
    assert set(processes.values()) == {g.principal for g in in_file}


def test_the_acl_check_catches_mistakes() -> None:
    settings = OdiaSettings(_env_file=None)  # type: ignore[call-arg]
    renamed = settings.model_copy(update={"app_id": "other"})
    assert expected_grants(renamed) != expected_grants(settings)  # group names follow the app id
    moved = settings.model_copy(update={"topics": settings.topics.with_suffix("x")})
    assert not {g.name for g in expected_grants(moved) if g.resource == "topic"} & {
        g.name for g in acls_file_grants() if g.resource == "topic"}


def test_the_acl_service_grants_exactly_the_table(
    tmp_path: Path, principals: set[str], passwords: dict[str, str]
) -> None:
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    run, calls = run_acls_script(tmp_path, passwords)
    assert run.returncode == 0, run.stderr
    assert acl_calls_as_grants(calls) == set(acls_file_grants())
    # One SCRAM-SHA-512 user per principal, each with the password of its own variable.
    users = {}
    for call in calls:
        if call[0] == "kafka-configs.sh":
            assert _option_values(call, "--entity-type") == ["users"] and "--alter" in call
            (config,) = _option_values(call, "--add-config")
            users[_option_values(call, "--entity-name")[0]] = config
    assert users == {p: f"SCRAM-SHA-512=[password={passwords[password_variable(p)]}]" for p in principals}
    # Every call goes to the SASL_SSL broker as odia-admin; no password reaches the output.
    for call in calls:
        assert _option_values(call, "--bootstrap-server") == ["kafka-sasl:9094"], call
    for secret in passwords.values():
        assert secret not in run.stdout + run.stderr
    assert not list(tmp_path.glob("tmp*")), "the admin's client configuration is removed"


def test_the_acl_service_refuses_missing_or_weak_passwords(tmp_path: Path, passwords: dict[str, str]) -> None:
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    for name, value in (("SASL_PASSWORD_AGENTS", ""), ("SASL_ADMIN_PASSWORD", "short"),
                        ("SASL_PASSWORD_SERVING", 'quote"in-a-long-password')):
        work = tmp_path / name
        work.mkdir()
        run, calls = run_acls_script(work, {**passwords, name: value})
        assert run.returncode != 0 and name in run.stderr, (name, run.stderr)
        assert calls == [], "nothing is created before every password checked"


def _serve_tls_once(cert: Path, key: Path) -> tuple[int, threading.Thread]:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def accept() -> None:
        with listener:
            for _ in range(2):
                conn, _ = listener.accept()
                try:
                    with server_ctx.wrap_socket(conn, server_side=True):
                        pass
                except (ssl.SSLError, OSError):
                    pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def test_the_certificates_verify_with_the_broker_host_name(tmp_path: Path) -> None:
    if not (shutil.which("bash") and shutil.which("keytool") and shutil.which("openssl")):
        pytest.skip("needs bash, keytool and openssl")
    secrets, public = tmp_path / "secrets", tmp_path / "public"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KAFKA_SECRETS_DIR": str(secrets),
           "KAFKA_CA_DIR": str(public), "TMPDIR": str(tmp_path)}
    certs = ["bash", str(SASL_DIR / "certs.sh")]
    run = subprocess.run(certs, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in secrets.iterdir()) == ["ca.crt", "kafka-sasl.p12", "kafka-sasl.p12.pass"]
    assert sorted(p.name for p in public.iterdir()) == ["ca.crt"]
    assert (secrets / "kafka-sasl.p12").stat().st_mode & 0o077 == 0
    assert (public / "ca.crt").stat().st_mode & 0o444 == 0o444
    assert not list(tmp_path.glob("tmp*")), "the CA's key is not kept"
    # A second run keeps them.
    before = (public / "ca.crt").read_bytes()
    again = subprocess.run(certs, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert again.returncode == 0 and "kept" in again.stdout and (public / "ca.crt").read_bytes() == before
    # The keystore holds the broker's key and its chain, nothing else.
    password = (secrets / "kafka-sasl.p12.pass").read_text()
    listing = subprocess.run(
        ["keytool", "-list", "-keystore", str(secrets / "kafka-sasl.p12"), "-storepass", password],
        capture_output=True, text=True, check=True,
    ).stdout
    assert listing.count("PrivateKeyEntry") == 1 and "trustedCertEntry" not in listing
    cert, key = tmp_path / "broker.pem", tmp_path / "broker.key"
    for out, flags in ((cert, ["-nokeys", "-clcerts"]), (key, ["-nocerts", "-nodes"])):
        subprocess.run(["openssl", "pkcs12", "-in", str(secrets / "kafka-sasl.p12"), "-passin", f"pass:{password}",
                        *flags, "-out", str(out)], capture_output=True, check=True)
    for purpose in ("sslserver", "sslclient"):  # clients' TLS, and the controller's mutual TLS
        check = subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", purpose, "-CAfile",
                                str(public / "ca.crt"), str(cert)], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
    # A client that trusts ca.crt accepts the broker as kafka-sasl, and refuses it under another name.
    port, thread = _serve_tls_once(cert, key)
    client = ssl.create_default_context(cafile=str(public / "ca.crt"))
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    with (socket.create_connection(("127.0.0.1", port), timeout=10) as raw_conn,
          client.wrap_socket(raw_conn, server_hostname="kafka-sasl") as tls):
        assert tls.getpeercert()["subject"] == ((("commonName", "kafka-sasl"),),)
    with (socket.create_connection(("127.0.0.1", port), timeout=10) as raw_conn,
          pytest.raises(ssl.SSLCertVerificationError)):
        client.wrap_socket(raw_conn, server_hostname="kafka.example")
    thread.join(10)
