"""Deterministic values that match a JSON Schema: what the fake model "writes" as tool
arguments and structured output, so clients that validate them (the OpenAI SDK's
`parse`, LangChain's structured output, agent frameworks) work offline.

Covers what tool and response schemas use in practice (pydantic's output included):
objects, arrays, scalars with bounds, enums, const, `$ref` into `$defs`, `anyOf`,
`oneOf`, `allOf` and the common string formats. `pattern` is not solved.
"""

from __future__ import annotations

import random
from typing import Any

FORMATS = {
    "date-time": "2025-01-31T12:00:00Z",
    "date": "2025-01-31",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "123e4567-e89b-12d3-a456-426614174000",
    "ipv4": "192.0.2.1",
    "hostname": "example.com",
}
MAX_DEPTH = 8  # recursive schemas stop here (with the smallest valid value)


class SchemaInstances:
    def __init__(self, root: dict[str, Any], rng: random.Random, words: list[str]) -> None:
        self.root = root
        self.rng = rng
        self.words = words or ["example"]

    def value(self, schema: Any, depth: int = 0) -> Any:
        if not isinstance(schema, dict) or depth > MAX_DEPTH * 2:
            return None
        if "$ref" in schema:
            return self.value(self._resolve(schema["$ref"]), depth + 1)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        if "default" in schema and schema.get("type") != "object":
            return schema["default"]
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                options = [
                    o for o in schema[key] if not (isinstance(o, dict) and o.get("type") == "null")
                ]
                return self.value((options or schema[key])[0], depth + 1)
        if schema.get("allOf"):
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                part = (
                    self._resolve(part["$ref"])
                    if isinstance(part, dict) and "$ref" in part
                    else part
                )
                merged = merge(merged, part) if isinstance(part, dict) else merged
            return self.value(merged, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "string"
        return getattr(self, f"_{kind}", self._null)(schema, depth)

    def _resolve(self, ref: str) -> dict[str, Any]:
        node: Any = self.root
        for part in ref.removeprefix("#/").split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return node if isinstance(node, dict) else {}

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties: dict[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        # Strict schemas (OpenAI's structured outputs) require every property anyway.
        wanted = [name for name in properties if name in required or depth < MAX_DEPTH]
        return {name: self.value(properties[name], depth + 1) for name in wanted}

    def _array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        count = max(int(schema.get("minItems", 0)), 1 if depth < MAX_DEPTH else 0)
        count = min(count, int(schema.get("maxItems", count)))
        items = schema.get("items") or {}
        return [self.value(items, depth + 1) for _ in range(count)]

    def _string(self, schema: dict[str, Any], depth: int) -> str:
        if schema.get("format") in FORMATS:
            return FORMATS[schema["format"]]
        text = self.rng.choice(self.words)
        low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
        while len(text) < low:
            text += " " + self.rng.choice(self.words)
        return text[: int(high)] if high is not None else text

    def _integer(self, schema: dict[str, Any], depth: int) -> int:
        return int(self._bounded(schema, step=1.0))

    def _number(self, schema: dict[str, Any], depth: int) -> float:
        return self._bounded(schema, step=0.5)

    @staticmethod
    def _bounded(schema: dict[str, Any], *, step: float) -> float:
        """1 when the bounds allow it, else the nearest allowed value."""
        low = max(
            float(schema.get("minimum", -1e18)), float(schema.get("exclusiveMinimum", -1e18)) + step
        )
        high = min(
            float(schema.get("maximum", 1e18)), float(schema.get("exclusiveMaximum", 1e18)) - step
        )
        return min(max(1.0, low), high)

    def _boolean(self, schema: dict[str, Any], depth: int) -> bool:
        return True

    def _null(self, schema: dict[str, Any], depth: int) -> None:
        return None


def merge(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    merged = {**left, **right}
    if "properties" in left and "properties" in right:
        merged["properties"] = {**left["properties"], **right["properties"]}
    if "required" in left and "required" in right:
        merged["required"] = [*left["required"], *right["required"]]
    return merged


def instance(schema: dict[str, Any] | None, rng: random.Random, words: list[str]) -> Any:
    """A value that matches `schema` (an empty object for no schema)."""
    if not schema:
        return {}
    return SchemaInstances(schema, rng, words).value(schema)
