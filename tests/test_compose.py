"""``docker-compose.yml`` is a valid Compose file and agrees with the project.

There is no Docker engine in CI, so the file is validated against the Compose Specification's
JSON Schema (``tests/data/compose-spec.schema.json``, see its ``.SOURCE.md``) after YAML parsing
and after ``${VAR:-default}`` interpolation, and its cross-references are checked: dependencies,
health checks, volumes, ``ODIA_`` variables against the live settings model, commands against
the live ``odia`` CLI, and the wiring of Kafka, Qdrant, vLLM and the adapter volume.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import typer
import yaml
from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

from odia_stream.settings import OdiaSettings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.schema.json"
SCHEMA_NOTE = SCHEMA.with_name("compose-spec.schema.SOURCE.md")

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


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """docker-compose.yml as parsed."""
    return load_compose()


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    """docker-compose.yml interpolated with an empty environment (every variable's default)."""
    return interpolate(raw, {})


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
