"""`manage.py api_reference [--check]`: docs/api.md, the API reference, from the OpenAPI schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from drf_spectacular.generators import SchemaGenerator

REFERENCE = Path(settings.BASE_DIR) / "docs" / "api.md"
HEADER = """# API reference

Generated from the OpenAPI document (`GET /api/v1/schema`) by `python manage.py api_reference`;
a test fails when it is out of date. Signing every request: `docs/runbooks/api_authentication.md`.
Bodies are UTF-8 JSON; every error is `{"error": {"code", "message", "fields"?}}`
(`ErrorEnvelope` below); list endpoints page with `limit` and `cursor` / `next_cursor`.
"""


def _cell(text: Any) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return f"`{schema['$ref'].rsplit('/', 1)[1]}`"
    if "allOf" in schema:
        return " & ".join(_type(part) for part in schema["allOf"])
    if "oneOf" in schema:
        return " or ".join(_type(part) for part in schema["oneOf"])
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    kind = schema.get("type", "any")
    if "format" in schema:
        kind = f"{kind} ({schema['format']})"
    if "enum" in schema:
        kind = f"{kind}: {', '.join(f'`{value}`' for value in schema['enum'] if value is not None)}"
    return kind + (", nullable" if schema.get("nullable") else "")


def _body_schema(content: dict[str, Any]) -> str:
    schema = next(iter(content.values()), {}).get("schema", {})
    return _type(schema) if schema else ""


def reference_markdown(schema: dict[str, Any]) -> str:
    """The reference as Markdown: each operation, then each schema's fields."""
    lines = [HEADER]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            lines += [f"## {method.upper()} `{path}`", ""]
            if operation.get("summary"):
                lines += [f"**{operation['summary']}**", ""]
            if operation.get("description"):
                lines += [operation["description"].strip(), ""]
            parameters = operation.get("parameters", [])
            if parameters:
                lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
                lines += [
                    f"| `{p['name']}` | {p['in']} | {_cell(_type(p.get('schema', {})))} | "
                    f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description'))} |"
                    for p in parameters
                ]
                lines.append("")
            if "requestBody" in operation:
                lines += [f"Request body: {_body_schema(operation['requestBody'].get('content', {}))}", ""]
            lines += ["| status | body | meaning |", "|---|---|---|"]
            lines += [
                f"| {status} | {_cell(_body_schema(response.get('content', {})))} | "
                f"{_cell(response.get('description'))} |"
                for status, response in operation["responses"].items()
            ]
            lines.append("")
    lines += ["## Schemas", ""]
    for name, component in schema.get("components", {}).get("schemas", {}).items():
        lines += [f"### `{name}`", ""]
        if component.get("description"):
            lines += [_cell(component["description"]), ""]
        properties = component.get("properties")
        if properties:
            required = set(component.get("required", []))
            lines += ["| field | type | required | description |", "|---|---|---|---|"]
            lines += [
                f"| `{field}` | {_cell(_type(spec))} | {'yes' if field in required else 'no'} | "
                f"{_cell(spec.get('description'))} |"
                for field, spec in properties.items()
            ]
        else:
            lines.append(_cell(_type(component)))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


class Command(BaseCommand):
    help = "Write docs/api.md from the OpenAPI schema; with --check, exit 1 if it is out of date."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true", help="compare only, write nothing")

    def handle(self, *args: Any, check: bool, **options: Any) -> None:
        text = reference_markdown(SchemaGenerator().get_schema(request=None, public=True))
        if check:
            if not REFERENCE.is_file() or REFERENCE.read_text() != text:
                raise CommandError("docs/api.md is out of date: run `python manage.py api_reference`.")
            self.stdout.write("docs/api.md is up to date")
            return
        REFERENCE.write_text(text)
        self.stdout.write(f"wrote {REFERENCE.relative_to(settings.BASE_DIR)}")
