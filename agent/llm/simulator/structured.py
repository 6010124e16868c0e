"""Structured output: make an answer fit a `response_format` JSON schema.

The simulated agents already answer JSON where a caller parses it (planner, verifier,
classifier, as with `json_mode`). Under a `json_schema` response format the answer is
fitted to the schema, keeping every value that fits: properties the schema lacks are
dropped when it forbids extra ones, missing required ones are generated, a value of the
wrong type is replaced; a missing nullable value is null. A free-text answer (a worker's)
becomes a generated instance whose first generated string carries the text. Local `$ref`s
(`#/$defs/...`, what pydantic emits), `anyOf`/`oneOf`, `enum`, `const`, type lists,
`minItems`/`maxItems` and numeric bounds are understood; `pattern` and `format` are not.
"""

from __future__ import annotations

import json
from typing import Any

MAX_REF_DEPTH = 32
"""Stops generating a recursive schema (a tree of `$ref`s) past this depth."""
GENERATED_STRING = "simulated"

_MISSING: Any = object()
"""No value: generate one."""

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _fits_type(value: Any, type_name: str) -> bool:
    if type_name == "null":
        return value is None
    if isinstance(value, bool) and type_name != "boolean":
        return False
    return isinstance(value, _PYTHON_TYPES.get(type_name, ()))


class _Fitter:
    def __init__(self, root: dict[str, Any], text: str) -> None:
        self._root = root
        self._text = text

    def _resolve(self, schema: Any) -> dict[str, Any]:
        for _ in range(MAX_REF_DEPTH):
            if not isinstance(schema, dict):
                return {}
            ref = schema.get("$ref")
            if not isinstance(ref, str) or not ref.startswith("#"):
                return schema
            target: Any = self._root
            for part in ref.lstrip("#").strip("/").split("/"):
                if part:
                    part = part.replace("~1", "/").replace("~0", "~")
                    target = target.get(part) if isinstance(target, dict) else None
            schema = target
        return {}

    def _string(self) -> str:
        # The answer's own text goes into the first generated string, once.
        text, self._text = self._text, ""
        return text or GENERATED_STRING

    def fit(self, value: Any, raw_schema: Any, depth: int = 0) -> Any:
        if value is _MISSING and depth > MAX_REF_DEPTH:
            return None
        schema = self._resolve(raw_schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return value if value in schema["enum"] else schema["enum"][0]
        branches = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf")
        if isinstance(branches, list) and branches:
            return self._fit_branches(value, branches, depth)
        declared = schema.get("type")
        types = declared if isinstance(declared, list) else [declared] if declared else []
        if not types:
            return value if value is not _MISSING else self._guess(schema, depth)
        for type_name in types:
            if value is not _MISSING and _fits_type(value, type_name):
                return self._fit_type(value, type_name, schema, depth)
        real = [t for t in types if t != "null"]
        if value is _MISSING and len(real) < len(types):
            return None
        return self._fit_type(_MISSING, real[0], schema, depth) if real else None

    def _fit_branches(self, value: Any, branches: list[Any], depth: int) -> Any:
        resolved = [self._resolve(b) for b in branches]
        if value is not _MISSING:
            for branch in resolved:
                types = branch.get("type")
                names = types if isinstance(types, list) else [types]
                if any(isinstance(n, str) and _fits_type(value, n) for n in names):
                    return self.fit(value, branch, depth)
        non_null = [b for b in resolved if b.get("type") != "null"]
        if value is _MISSING and len(non_null) < len(resolved):
            return None  # A missing nullable value: null says "nothing to say".
        return self.fit(value, (non_null or resolved)[0], depth)

    def _guess(self, schema: dict[str, Any], depth: int) -> Any:
        if "properties" in schema:
            return self._fit_type(_MISSING, "object", schema, depth)
        if "items" in schema:
            return self._fit_type(_MISSING, "array", schema, depth)
        return None

    def _fit_type(self, value: Any, type_name: str, schema: dict[str, Any], depth: int) -> Any:
        if type_name == "object":
            return self._fit_object(value if value is not _MISSING else {}, schema, depth)
        if type_name == "array":
            return self._fit_array(value if value is not _MISSING else [], schema, depth)
        if type_name == "string":
            text = value if value is not _MISSING else self._string()
            minimum = schema.get("minLength", 0)
            text = text.ljust(minimum, "x") if isinstance(minimum, int) else text
            maximum = schema.get("maxLength")
            return text[:maximum] if isinstance(maximum, int) else text
        if type_name in {"integer", "number"}:
            return self._fit_number(value, type_name, schema)
        if type_name == "boolean":
            return value if value is not _MISSING else True
        return None

    @staticmethod
    def _fit_number(value: Any, type_name: str, schema: dict[str, Any]) -> Any:
        number = value if value is not _MISSING else 0
        for key, step in (("minimum", 0), ("exclusiveMinimum", 1)):
            low = schema.get(key)
            if isinstance(low, int | float) and (number < low or (step and number == low)):
                number = low + step
        for key, step in (("maximum", 0), ("exclusiveMaximum", 1)):
            high = schema.get(key)
            if isinstance(high, int | float) and (number > high or (step and number == high)):
                number = high - step
        return int(number) if type_name == "integer" else number

    def _fit_object(self, value: dict[str, Any], schema: dict[str, Any], depth: int) -> Any:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return value
        required = schema.get("required")
        needed = set(required) if isinstance(required, list) else set()
        fitted: dict[str, Any] = {}
        for name, sub in properties.items():
            if name in value:
                fitted[name] = self.fit(value[name], sub, depth + 1)
            elif name in needed:
                fitted[name] = self.fit(_MISSING, sub, depth + 1)
        if schema.get("additionalProperties", True) is not False:
            fitted.update({k: v for k, v in value.items() if k not in properties})
        return fitted

    def _fit_array(self, value: list[Any], schema: dict[str, Any], depth: int) -> list[Any]:
        items = schema.get("items", {})
        fitted = [self.fit(item, items, depth + 1) for item in value]
        minimum = schema.get("minItems", 0)
        while isinstance(minimum, int) and len(fitted) < minimum:
            fitted.append(self.fit(_MISSING, items, depth + 1))
        maximum = schema.get("maxItems")
        return fitted[:maximum] if isinstance(maximum, int) else fitted


def structured_answer(text: str, schema: dict[str, Any]) -> str:
    """Return `text` fitted to `schema`, as compact JSON.

    Args:
        text: The simulated agent's answer (JSON for planner, verifier, classifier).
        schema: The `json_schema.schema` of the request's `response_format`.

    Returns:
        JSON text that fits the schema and keeps what of `text` already fitted.
    """
    try:
        value: Any = json.loads(text)
        leftover = ""
    except json.JSONDecodeError:
        value, leftover = _MISSING, text
    return json.dumps(_Fitter(schema, leftover).fit(value, schema))
