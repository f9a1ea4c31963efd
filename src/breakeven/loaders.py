"""Reading files: the catalog directory and workload files. The edge between disk and core.

Every problem becomes one ``CatalogError`` / ``WorkloadError`` naming the file, the field
(dotted path, list items by index) and what is wrong, never a traceback.
"""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from breakeven.catalog import Catalog
from breakeven.catalog.engine import Engine
from breakeven.catalog.schema import (
    GPU,
    GPUOffer,
    HostedModel,
    Interconnect,
    OpenModel,
    QualityRow,
)
from breakeven.errors import CatalogError, InputError, WorkloadError
from breakeven.planner.workload import Workload

if TYPE_CHECKING:
    from breakeven.gateway.config import GatewayConfig

__all__ = ["default_catalog_dir", "load_catalog", "load_gateway_config", "load_workload",
           "parse_workload", "read_json"]

_M = TypeVar("_M", bound=BaseModel)
_FILES = {
    "gpus.yaml": ("gpus", "offers"),
    "open_models.yaml": ("models",),
    "hosted.yaml": ("hosted",),
    "engines.yaml": ("engines",),
    "quality.yaml": ("quality",),
    "interconnects.yaml": ("interconnects",),
}
_OPTIONAL = {"interconnects.yaml"}  # a user's older catalog copy may lack it
_ROW_TYPES: dict[str, type[BaseModel]] = {
    "gpus": GPU,
    "offers": GPUOffer,
    "models": OpenModel,
    "hosted": HostedModel,
    "engines": Engine,
    "quality": QualityRow,
    "interconnects": Interconnect,
}


def default_catalog_dir() -> Path:
    return Path(str(resources.files("breakeven.catalog") / "data"))


_BASE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_BASE_LOADER):  # type: ignore[misc]
    """Safe YAML that refuses a key given twice in one mapping (last-wins hides a typo) and
    turns an impossible date (2026-02-30) into a located YAML error, not a ValueError."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = key_node.value
                if key in seen and key != "<<":
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first given at line "
                                    f"{seen[key]}; a second value would silently win)",
                        key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: Any) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid date {node.value!r} ({exc})", node.start_mark) from None


_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp",
                              _StrictLoader.construct_yaml_timestamp)
_StrictLoader.add_constructor("tag:yaml.org,2002:map", _StrictLoader.construct_yaml_map)


def _read_yaml(path: Path, error: type[InputError]) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("file not found", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read: {exc}", where=str(path)) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise error(f"not valid YAML{line}: {problem}", where=str(path)) from None


def _field_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def validation_error(exc: ValidationError, where: str, error: type[InputError],
                     prefix: tuple[Any, ...] = ()) -> InputError:
    """Translate pydantic's error list into one line: the first problem, and a count."""
    errors = exc.errors()
    # a misspelt field explains the "missing" error next to it: report the typo first
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = prefix + tuple(first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field (check the spelling; see examples/ for the valid fields)"
    elif "input" in first and first["type"] != "missing" and not isinstance(
            first["input"], dict | list):
        message = f"{message} (got {first['input']!r})"
    more = len(errors) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return error(message, where=where, field=_field_path(loc) or None)


def _rows(path: Path, data: Any, key: str, kind: type[_M]) -> list[_M]:
    if not isinstance(data, dict) or key not in data:
        raise CatalogError(f"expected a top-level {key!r} list", where=str(path))
    items = data[key]
    if not isinstance(items, list):
        raise CatalogError("expected a list", where=str(path), field=key)
    out = []
    for i, item in enumerate(items):
        try:
            out.append(kind.model_validate(item))
        except ValidationError as exc:
            raise validation_error(exc, str(path), CatalogError, (key, i)) from None
    return out


def _row_key(key: str, row: Any) -> Any:
    if key == "offers":
        return (row.gpu, row.provider, row.region, row.pricing)
    return (row.model if key == "quality" else row.id).lower()


def _overlaid(base: list[Any], extra: list[Any], key: str) -> list[Any]:
    """``base`` with ``extra`` laid over it: a row with the same key replaces, others add."""
    merged = {_row_key(key, row): row for row in base}
    merged.update({_row_key(key, row): row for row in extra})
    return list(merged.values())


def _read_tables(root: Path) -> tuple[dict[str, list[Any]], dict[str, bool]]:
    """The rows of each file in ``root`` and, per table, whether it is an overlay
    (``overlay: true`` at the top: its rows lie over the packaged ones)."""
    tables: dict[str, list[Any]] = {}
    overlay: dict[str, bool] = {}
    for name, keys in _FILES.items():
        path = root / name
        if not path.exists():
            continue
        data = _read_yaml(path, CatalogError)
        is_overlay = isinstance(data, dict) and data.get("overlay") is True
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in ("overlay", "feed")}
        for key in keys:
            if is_overlay and isinstance(data, dict) and key not in data:
                continue
            tables[key] = _rows(path, data, key, _ROW_TYPES[key])
            overlay[key] = is_overlay
    return tables, overlay


def load_catalog(directory: Path | str | None = None) -> Catalog:
    """Load the packaged catalog, a user's copy of the same five files, or an overlay.

    An overlay directory (``breakeven catalog import`` writes one) holds only the files it
    changes, each marked ``overlay: true``; its rows replace or add to the packaged rows by
    id, and the files it lacks are the packaged ones.
    """
    packaged = default_catalog_dir()
    root = Path(directory) if directory is not None else packaged
    if not root.is_dir():
        raise CatalogError("catalog directory not found", where=str(root))
    tables, overlay = _read_tables(root)
    if any(overlay.values()) and root != packaged:
        base, _ = _read_tables(packaged)
        for key in _ROW_TYPES:
            if key not in tables:
                tables[key] = base[key]
            elif overlay[key]:
                tables[key] = _overlaid(base[key], tables[key], key)
    for name in _OPTIONAL:  # a copy of the catalog from before the file existed
        for key in _FILES[name]:
            tables.setdefault(key, [])
    for name, keys in _FILES.items():
        if any(key not in tables for key in keys):
            raise CatalogError("file not found", where=str(root / name))
    try:
        return Catalog(**tables)
    except CatalogError as exc:
        raise CatalogError(exc.message, where=str(root)) from None


def read_json(path: Path | str, what: str) -> Any:
    """A local JSON file (a price feed), or one-line ``InputError``."""
    import json

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", where=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", where=str(p)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg} (expected {what})", where=str(p)) from None


def _mapping(kind: type[_M], data: Any, where: str, error: type[InputError], what: str) -> _M:
    """``data`` (a parsed YAML document) validated as ``kind``, or one-line ``error``."""
    if not isinstance(data, dict):
        raise error(f"expected a mapping of {what}", where=where)
    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, where, error) from None


def parse_workload(data: Any, where: str) -> Workload:
    return _mapping(Workload, data, where, WorkloadError, "workload fields")


def load_workload(path: Path | str, catalog: Catalog, *, today: date | None = None
                  ) -> tuple[Workload, Catalog]:
    """Read and validate a workload file; return it and the catalog with its overrides.

    References to catalog ids are checked here so that the error names the file.
    """
    from breakeven.planner.overrides import apply_overrides, check_references

    where = str(path)
    workload = parse_workload(_read_yaml(Path(path), WorkloadError), where)
    check_references(workload, catalog, where)
    day = today or date.today()
    _refuse_retired(workload, catalog, where, day)
    merged = apply_overrides(workload, catalog, source=f"workload file {Path(path).name}",
                             as_of=workload.as_of or day)
    return workload, merged.current(day)


def _refuse_retired(workload: Workload, catalog: Catalog, where: str, today: date) -> None:
    """A workload naming a hosted model its provider has retired: one line, the successor."""
    gone = {h.id.lower(): h for h in catalog.retired(today)}
    refs = [(f"candidates.hosted[{i}]", ref)
            for i, ref in enumerate(workload.candidates.hosted or ())]
    refs += [(f"prices.hosted.{ref}", ref) for ref in workload.prices.hosted]
    for field, ref in refs:
        row = gone.get(ref.lower())
        if row is not None:
            assert row.retired is not None
            raise WorkloadError(f"{row.id!r} was retired by {row.provider} on "
                                f"{row.retired.isoformat()}; use {row.successor} instead",
                                where=where, field=field)


def load_gateway_config(path: Path | str) -> GatewayConfig:
    """Read and validate a gateway config file (``breakeven gateway --config``)."""
    from breakeven.gateway.config import GatewayConfig

    return _mapping(GatewayConfig, _read_yaml(Path(path), InputError), str(path), InputError,
                    "gateway settings")
