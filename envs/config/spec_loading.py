"""Reading spec files: YAML in, an :class:`EnvironmentSpec` or precise errors out.

Every problem is reported at once, each naming the file, the line, the key
path, what was wrong and what is allowed, so a user fixes a spec in one
round instead of one error per run.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from envs.core.errors import ConfigError
from envs.core.spec import EnvironmentSpec

MAX_SPEC_BYTES = 1 << 20


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with a spec file, with where it is."""

    file: str
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.path}:" if self.path else ""
        return f"{where}:{key} {self.message}"


class SpecInvalid(ConfigError):
    """A spec file that cannot be used; carries every problem found."""

    def __init__(self, problems: Sequence[SpecProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def _line_index(node: yaml.Node, prefix: tuple[str | int, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Map each key path in a composed YAML document to its 1-based line."""
    lines: dict[tuple[Any, ...], int] = {prefix: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, key_node.value)
            lines.update(_line_index(value_node, path))
            lines[path] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_line_index(item, (*prefix, index)))
    return lines


def _model_at(path: Sequence[str | int]) -> type[BaseModel] | None:
    """The spec section model found at a key path, to list its allowed keys."""
    model: type[BaseModel] | None = EnvironmentSpec
    for part in path:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return model


def _explain(error: Any) -> str:
    """Turn one pydantic error into a sentence a user can act on."""
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        allowed = sorted(parent.model_fields) if parent else []
        guess = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean '{guess[0]}'?)" if guess else ""
        return f"unknown key{hint}; allowed here: {', '.join(allowed)}"
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if (
        "input" in error
        and kind not in {"model_type", "dict_type"}
        and repr(error["input"]) not in message
    ):
        shown = repr(error["input"])
        if len(shown) > 60:
            shown = shown[:57] + "..."
        message = f"{message} (got {shown})"
    return message


def _path_text(loc: Iterable[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# A spec is a few dozen keys: these bounds are far above any real one and far below
# what an alias bomb (each level repeating the one below) or a deep nest would cost.
MAX_NODES = 20_000
MAX_DEPTH = 50


def _check_size(node: yaml.Node | None, file: str) -> None:
    """Refuse a document whose aliases would expand it past MAX_NODES, or nest past MAX_DEPTH.

    Counted on the composed graph, where an alias is the node it names: each
    node's expanded size once (memoised), so the check itself stays linear.
    """
    sizes: dict[int, int] = {}

    def size(current: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise SpecInvalid([SpecProblem(file, "", f"nested deeper than {MAX_DEPTH} levels")])
        if id(current) in sizes:
            return sizes[id(current)]
        total = 1
        if isinstance(current, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in current.value)
        elif isinstance(current, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in current.value)
        if total > MAX_NODES:
            raise SpecInvalid(
                [SpecProblem(file, "", f"expands to more than {MAX_NODES} values (YAML aliases?)")]
            )
        sizes[id(current)] = total
        return total

    if node is not None:
        size(node, 0)


def parse_spec(text: str, file: str) -> EnvironmentSpec:
    """Validate spec text; raise :class:`SpecInvalid` listing every problem."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        _check_size(node, file)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecInvalid([SpecProblem(file, "", f"not valid YAML: {problem}", line)]) from None
    except RecursionError:
        raise SpecInvalid([SpecProblem(file, "", "nested too deeply for a spec")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise SpecInvalid(
            [
                SpecProblem(
                    file, "", "a spec must be a mapping with at least 'version', 'image', 'url'"
                )
            ]
        )
    lines = _line_index(node) if node is not None else {}
    try:
        return EnvironmentSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)
            problems.append(SpecProblem(file, _path_text(loc), _explain(error), line))
        problems.sort(key=lambda p: (p.line or 0, p.path))
        raise SpecInvalid(problems) from None


def load_spec(path: Path) -> EnvironmentSpec:
    """Read and validate one spec file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecInvalid([SpecProblem(str(path), "", f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecInvalid([SpecProblem(str(path), "", "file is larger than 1 MiB")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecInvalid([SpecProblem(str(path), "", "not UTF-8 text")]) from None
    return parse_spec(text, str(path))
