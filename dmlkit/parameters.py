"""A notebook's parameters: read from its ``parameters`` cell, overrides checked before running.

The cell tagged ``parameters`` declares one name per line, with a type annotation where the
default alone does not say what is allowed::

    SMOKE: bool = bool(int(os.environ.get("DMLKIT_SMOKE", "0")))
    SEED = 0
    STEPS: int | None = None  # None: the protocol default
    HASH_METHOD: Literal["itq", "pca", "random"] = "itq"

:func:`notebook_parameters` parses the cell with :mod:`ast` (no code runs) and
:func:`check_overrides` checks ``--param`` values against each parameter's type: an annotation
(``int``, ``float``, ``bool``, ``str``, ``None``, ``X | Y``, ``list[T]``, ``tuple[T, ...]``,
``Literal[...]``), else the type of a literal default. The shared parameters have fixed types
(``DATASET`` must name a registered data set). A wrong value is a message that names the
parameter, the value and what was expected — before any kernel starts.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Parameter", "notebook_parameters", "check_overrides", "SHARED_PARAMETERS"]

#: The parameters every notebook of the kit declares, with their types.
SHARED_PARAMETERS = {"SMOKE": "bool", "SEED": "int", "DATASET": "str", "OUT_DIR": "str"}


@dataclass(frozen=True)
class Parameter:
    """One line of a ``parameters`` cell."""

    name: str
    default: str  # the default expression, as written
    annotation: str | None  # the type annotation, as written
    help: str  # the line's comment

    @property
    def type_text(self) -> str:
        """The parameter's type as an annotation would spell it (``int | None``)."""
        return _spell(_spec(self))


def notebook_parameters(path: str | Path) -> dict[str, Parameter]:
    """The parameters declared in the notebook's cell tagged ``parameters``, in order."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if not cells:
        raise ValueError(f"{Path(path).name} has no cell tagged 'parameters'")
    source = cells[0].source
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"{Path(path).name}: its parameters cell is not valid Python: {exc}") from None
    lines = source.splitlines()
    parameters: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, annotation = node.targets[0].id, None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, annotation = node.target.id, ast.get_source_segment(source, node.annotation)
        else:
            continue
        last_line = lines[node.end_lineno - 1]
        comment = last_line[node.end_col_offset :].strip()
        parameters[name] = Parameter(
            name, ast.get_source_segment(source, node.value), annotation, comment.lstrip("#").strip()
        )
    return parameters


def check_overrides(
    parameters: dict[str, Parameter], overrides: dict[str, Any], notebook: str = "notebook"
) -> tuple[dict[str, Any], list[str]]:
    """Check ``overrides`` against ``parameters``; return the values to inject (converted where
    the type says so: ``1`` for a ``float``, a list for a ``tuple``, ``"true"`` for a ``bool``) and
    the problems found, one line each."""
    problems, values = [], {}
    unknown = [key for key in overrides if key not in parameters]
    if unknown:
        problems.append(f"{notebook}: unknown parameter(s) {unknown}; its parameters are: {', '.join(parameters)}")
    for key, value in overrides.items():
        if key not in parameters:
            continue
        parameter = parameters[key]
        spec = _spec(parameter)
        ok, converted = _conforms(spec, value)
        if ok and key == "DATASET":
            from dmlkit.data.registry import available

            if converted not in available():
                problems.append(
                    f"{notebook}: DATASET={value!r} is not a data set of the kit; choices: {', '.join(available())}"
                )
                continue
        if not ok:
            problems.append(f"{notebook}: {key}={value!r} ({_kind(value)}) is not {_describe(spec)}")
            continue
        values[key] = converted
    return values, problems


# A type spec is a small tree: ("name", "int"), ("union", [specs]), ("list", spec),
# ("tuple", spec) for tuple[T, ...], ("fixed", [specs]) for tuple[A, B], ("literal", [values]),
# ("any",).


def _spec(parameter: Parameter) -> tuple:
    if parameter.annotation:
        return _parse(ast.parse(parameter.annotation, mode="eval").body)
    if parameter.name in SHARED_PARAMETERS:
        return ("name", SHARED_PARAMETERS[parameter.name])
    try:
        default = ast.literal_eval(parameter.default)
    except (ValueError, SyntaxError):
        return ("any",)
    return _spec_of_value(default)


def _spec_of_value(value: Any) -> tuple:
    if value is None:
        return ("any",)
    if isinstance(value, (list, tuple)):
        kinds = {_spec_of_value(v) for v in value}
        element = kinds.pop() if len(kinds) == 1 else ("any",)
        if element == ("name", "int") and any(isinstance(v, float) for v in value):
            element = ("name", "float")
        return ("list" if isinstance(value, list) else "tuple", element)
    for name in ("bool", "int", "float", "str"):
        if type(value).__name__ == name:
            return ("name", name)
    return ("any",)


def _spell(spec: tuple) -> str:
    kind = spec[0]
    if kind == "any":
        return "Any"
    if kind == "name":
        return spec[1]
    if kind == "union":
        return " | ".join(_spell(option) for option in spec[1])
    if kind == "literal":
        return "Literal[" + ", ".join(repr(v) for v in spec[1]) + "]"
    if kind == "list":
        return f"list[{_spell(spec[1])}]"
    if kind == "tuple":
        return f"tuple[{_spell(spec[1])}, ...]"
    return "tuple[" + ", ".join(_spell(s) for s in spec[1]) + "]"


def _parse(node: ast.expr) -> tuple:
    if isinstance(node, ast.Constant) and node.value is None:
        return ("name", "None")
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted annotation
        return _parse(ast.parse(node.value, mode="eval").body)
    if isinstance(node, ast.Name):
        if node.id in ("int", "float", "bool", "str"):
            return ("name", node.id)
        if node.id == "Any":
            return ("any",)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return ("union", [_parse(node.left), _parse(node.right)])
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        head, inner = node.value.id, node.slice
        if head == "Literal":
            items = inner.elts if isinstance(inner, ast.Tuple) else [inner]
            return ("literal", [ast.literal_eval(item) for item in items])
        if head == "list":
            return ("list", _parse(inner))
        if head == "tuple":
            items = inner.elts if isinstance(inner, ast.Tuple) else [inner]
            if len(items) == 2 and isinstance(items[1], ast.Constant) and items[1].value is Ellipsis:
                return ("tuple", _parse(items[0]))
            return ("fixed", [_parse(item) for item in items])
        if head == "Optional":
            return ("union", [_parse(inner), ("name", "None")])
    raise ValueError(f"unsupported parameter annotation {ast.unparse(node)!r}")


def _conforms(spec: tuple, value: Any) -> tuple[bool, Any]:
    kind = spec[0]
    if kind == "any":
        return True, value
    if kind == "name":
        name = spec[1]
        if name == "None":
            return value is None, value
        if name == "bool":
            if isinstance(value, bool):
                return True, value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return True, value.lower() == "true"
            if type(value) is int and value in (0, 1):
                return True, bool(value)
            return False, value
        if name == "int":
            return type(value) is int, value
        if name == "float":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            return ok, float(value) if ok else value
        if name == "str":
            return isinstance(value, str), value
    if kind == "union":
        for option in spec[1]:
            ok, converted = _conforms(option, value)
            if ok:
                return True, converted
        return False, value
    if kind == "literal":
        return value in spec[1], value
    if kind in ("list", "tuple"):
        if not isinstance(value, (list, tuple)):
            return False, value
        checked = [_conforms(spec[1], item) for item in value]
        if not all(ok for ok, _ in checked):
            return False, value
        items = [item for _, item in checked]
        return True, (list(items) if kind == "list" else tuple(items))
    if kind == "fixed":
        if not isinstance(value, (list, tuple)) or len(value) != len(spec[1]):
            return False, value
        checked = [_conforms(s, item) for s, item in zip(spec[1], value)]
        return all(ok for ok, _ in checked), tuple(item for _, item in checked)
    raise AssertionError(spec)


def _describe(spec: tuple) -> str:
    kind = spec[0]
    if kind == "any":
        return "any value"
    if kind == "name":
        return {
            "None": "None",
            "bool": "a bool (True or False)",
            "int": "an integer",
            "float": "a number",
            "str": "a string",
        }[spec[1]]
    if kind == "union":
        return " or ".join(_describe(option) for option in spec[1])
    if kind == "literal":
        return "one of " + ", ".join(repr(v) for v in spec[1])
    if kind in ("list", "tuple"):
        return (
            f"a list of {_plural(_describe(spec[1]))}"
            if kind == "list"
            else f"a tuple of {_plural(_describe(spec[1]))}"
        )
    return "a tuple (" + ", ".join(_describe(s) for s in spec[1]) + ")"


def _plural(text: str) -> str:
    return {
        "an integer": "integers",
        "a number": "numbers",
        "a string": "strings",
        "a bool (True or False)": "bools",
    }.get(text, text)


def _kind(value: Any) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a bool",
        list: "a list",
        tuple: "a tuple",
        dict: "a dict",
        type(None): "None",
    }
    return names.get(type(value), type(value).__name__)
