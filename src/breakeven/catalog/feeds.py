"""Hosted-model rows from the price feeds people keep: LiteLLM and OpenRouter. Pure.

``from_feed`` takes a parsed JSON document (LiteLLM's ``model_prices_and_context_window.json``
or OpenRouter's ``/api/v1/models`` answer), the catalog it will lie over, the file's name and
date, and returns ``HostedModel`` rows (per-token prices as USD per million; batch and cache
prices carried) and how many entries it skipped because the feed does not describe them well
enough (no price, no context window, not a text model, a price that varies). A row that is
already in the catalog keeps the catalog's terms (regions, training, retention) and only
takes the feed's prices; a new row takes its provider's terms from the catalog when the
catalog knows the provider, else the least protective terms.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import ValidationError

from breakeven.catalog._catalog import Catalog
from breakeven.catalog.schema import HostedModel
from breakeven.errors import InputError

__all__ = ["FEEDS", "Feed", "Imported", "from_feed", "which_feed"]

Feed = Literal["litellm", "openrouter"]
FEEDS: tuple[Feed, ...] = ("litellm", "openrouter")
_NAMES = {"litellm": "LiteLLM model_prices_and_context_window.json",
          "openrouter": "OpenRouter /api/v1/models"}
_PROVIDERS = {"together_ai": "together", "fireworks_ai": "fireworks", "gemini": "google",
              "vertex_ai-language-models": "google", "vertex_ai": "google",
              "text-completion-openai": "openai", "deepinfra": "deepinfra"}
_MILLION = 1e6


@dataclass(frozen=True)
class Imported:
    rows: tuple[HostedModel, ...]
    skipped: int
    feed: Feed


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9./-]+", "-", text.lower()).strip("-./") or "model"


def which_feed(data: Any) -> Feed | None:
    """The feed a parsed document comes from, by its shape; ``None`` when it is neither."""
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        items = [m for m in data["data"] if isinstance(m, dict)]
        if items and sum("pricing" in m and "id" in m for m in items) * 2 >= len(items):
            return "openrouter"
    if isinstance(data, dict) and data:
        entries = [v for v in data.values() if isinstance(v, dict)]
        if entries and sum("litellm_provider" in v for v in entries) * 2 >= len(entries):
            return "litellm"
    return None


def _per_mtok(value: Any) -> float | None:
    """A per-token price (number or numeric string) as USD per million; ``None`` if absent
    or not a fixed price (OpenRouter's ``-1`` means "varies")."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number < 0 or number != number:
        return None
    return round(number * _MILLION, 6)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


class _Terms:
    """What the catalog says of a provider's terms, used for rows the catalog lacks."""

    def __init__(self, catalog: Catalog) -> None:
        self.by_provider: dict[str, HostedModel] = {}
        for h in catalog.hosted:
            self.by_provider.setdefault(h.provider, h)

    def of(self, provider: str) -> tuple[dict[str, Any], str]:
        known = self.by_provider.get(provider)
        if known is None:
            return ({"regions": ("global",), "trains_on_data": True, "zero_retention": False},
                    "terms not in the feed: assumed the least protective")
        return ({"regions": known.regions, "trains_on_data": known.trains_on_data,
                 "zero_retention": known.zero_retention},
                f"terms as the catalog's {known.id} ({provider})")


def _match(catalog: Catalog, name: str) -> tuple[HostedModel | None, HostedModel | None]:
    """(the catalog row this feed entry *is*, the catalog row it serves the same model as)."""
    tail = _slug(name.rsplit("/", 1)[-1])
    for form in dict.fromkeys((tail, tail.replace(".", "-"))):  # gpt-5.4; claude-sonnet-4.5
        if catalog.has_hosted(form):
            return catalog.hosted_model(form), None
        dated = re.fullmatch(r"(.+?)-(\d{8}|\d{4}-\d{2}-\d{2}|latest)", form)
        if dated and catalog.has_hosted(dated.group(1)):
            return None, catalog.hosted_model(dated.group(1))
    return None, None


def _row(fields: dict[str, Any], catalog: Catalog, terms: _Terms, key: str,
         source: str, as_of: date) -> HostedModel | None:
    """The catalog row ``fields`` describe, or ``None`` when they do not make a valid one."""
    same, like = _match(catalog, key)
    try:
        if same is not None and same.provider == fields["provider"]:
            keep = {k: v for k, v in fields.items()
                    if k not in ("id", "name", "provider") and v is not None}
            return HostedModel.model_validate({**same.model_dump(), **keep, "source": source,
                                               "as_of": as_of})
        base, note = terms.of(fields["provider"])
        twin = same or like
        extra: dict[str, Any] = {"same_model_as": twin.id} if twin is not None else {}
        return HostedModel(**{**base, **fields, **extra}, source=f"{source}; {note}",
                           as_of=as_of)
    except ValidationError:
        return None


def _litellm(data: Mapping[str, Any], catalog: Catalog, file_name: str,
             as_of: date) -> Iterator[HostedModel | None]:
    terms = _Terms(catalog)
    for key, entry in data.items():
        if key == "sample_spec" or not isinstance(entry, dict):
            continue
        mode = entry.get("mode")
        inp = _per_mtok(entry.get("input_cost_per_token"))
        out = _per_mtok(entry.get("output_cost_per_token"))
        window = _int(entry.get("max_input_tokens")) or _int(entry.get("max_tokens"))
        if mode not in ("chat", "embedding") or inp is None or window is None or (
                out is None and mode == "chat"):
            yield None
            continue
        provider = _PROVIDERS.get(str(entry.get("litellm_provider")),
                                  _slug(str(entry.get("litellm_provider") or "unknown")))
        fields: dict[str, Any] = {
            "id": f"litellm/{_slug(key)}", "name": key, "provider": provider,
            "kind": "embedding" if mode == "embedding" else "chat",
            "input_per_mtok": inp, "output_per_mtok": out or 0.0,
            "cached_input_per_mtok": _per_mtok(entry.get("cache_read_input_token_cost")),
            "context_window": window,
        }
        bin_, bout = (_per_mtok(entry.get("input_cost_per_token_batches")),
                      _per_mtok(entry.get("output_cost_per_token_batches")))
        if bin_ is not None and (bout is not None or mode == "embedding"):
            fields.update(batch_input_per_mtok=bin_, batch_output_per_mtok=bout or 0.0)
        for above in ("200k", "128k", "272k"):
            lin = _per_mtok(entry.get(f"input_cost_per_token_above_{above}_tokens"))
            lout = _per_mtok(entry.get(f"output_cost_per_token_above_{above}_tokens"))
            if lin is not None and lout is not None:
                fields.update(long_context_threshold=int(above[:-1]) * 1000,
                              long_input_per_mtok=lin, long_output_per_mtok=lout)
                break
        retired = entry.get("deprecation_date")
        if isinstance(retired, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", retired):
            fields.update(retired=date.fromisoformat(retired),
                          successor="the provider's replacement (the feed names none)")
        source = f"{_NAMES['litellm']} ({file_name}), key {key!r}"
        yield _row(fields, catalog, terms, key, source, as_of)


def _openrouter(data: Mapping[str, Any], catalog: Catalog, file_name: str,
                as_of: date) -> Iterator[HostedModel | None]:
    terms = _Terms(catalog)
    for entry in data["data"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            yield None
            continue
        raw = entry.get("pricing")
        pricing: dict[str, Any] = raw if isinstance(raw, dict) else {}
        inp, out = _per_mtok(pricing.get("prompt")), _per_mtok(pricing.get("completion"))
        window = _int(entry.get("context_length"))
        arch = entry.get("architecture")
        modality = str(arch.get("modality", "text->text")) if isinstance(arch, dict) \
            else "text->text"
        if inp is None or out is None or window is None or not modality.endswith("->text") \
                or entry["id"].endswith(":free"):
            yield None
            continue
        fields: dict[str, Any] = {
            "id": f"openrouter/{_slug(entry['id'])}", "name": entry.get("name") or entry["id"],
            "provider": "openrouter", "input_per_mtok": inp, "output_per_mtok": out,
            "cached_input_per_mtok": _per_mtok(pricing.get("input_cache_read")),
            "context_window": window,
        }
        created = entry.get("created")
        if isinstance(created, int) and created > 0:
            fields["released"] = datetime.fromtimestamp(created, tz=UTC).date()
        hf = entry.get("hugging_face_id")
        if isinstance(hf, str) and hf and catalog.has_model(hf):
            fields["open_model"] = catalog.model(hf).id
        source = f"{_NAMES['openrouter']} ({file_name}), model {entry['id']!r}"
        yield _row(fields, catalog, terms, entry["id"], source, as_of)


def from_feed(feed: Feed, data: Any, catalog: Catalog, *, file_name: str,
              as_of: date) -> Imported:
    """The feed's rows as catalog rows, or ``InputError`` when ``data`` is another feed."""
    found = which_feed(data)
    if found != feed:
        what = f"an {_NAMES[found]} file" if found else "neither feed's JSON"
        raise InputError(f"this is {what}, not {_NAMES[feed]} (--from {feed})",
                         where=file_name)
    reader = _litellm if feed == "litellm" else _openrouter
    rows: dict[str, HostedModel] = {}
    skipped = 0
    for row in reader(data, catalog, file_name, as_of):
        if row is None:
            skipped += 1
        else:
            rows.setdefault(row.id, row)
    return Imported(tuple(rows.values()), skipped, feed)
