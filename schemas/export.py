"""Export JSON Schema files for every topic model: ``python -m schemas.export [--check]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from schemas import TOPIC_MODELS

SCHEMA_DIR = Path(__file__).parent / "json"


def render_schemas() -> dict[str, str]:
    """File name -> JSON Schema text for every topic model (stable, sorted keys)."""
    out: dict[str, str] = {}
    for name, model in TOPIC_MODELS.items():
        schema = model.model_json_schema(mode="validation")
        schema["$id"] = f"https://odia-stream.dev/schemas/{name}.schema.json"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return out


def stale_files(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that are missing or differ from the models."""
    return [n for n, text in render_schemas().items() if not (directory / n).is_file() or (directory / n).read_text("utf-8") != text]


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Write the files, or with ``--check`` exit 1 listing stale ones."""
    args = sys.argv[1:] if argv is None else argv
    if "--check" in args:
        stale = stale_files()
        for name in stale:
            print(f"stale: schemas/json/{name} (run: python -m schemas.export)")
        return 1 if stale else 0
    for path in write_schemas():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
