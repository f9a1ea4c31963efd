"""The gateway config a plan implies (``breakeven plan --emit-gateway FILE``). Pure.

One self-hosted backend per replica of the chosen deployment (vLLM's default port upward,
the model served under its Hugging Face id, GPU price and measured-or-estimated capacity
from the plan), one hosted backend per hosted model the plan places traffic on (price,
region and data policy from the catalog), and one route per segment route (or segment
name) in front of the side the plan chose for it. Data classes keep their default rules,
so a ``pii`` segment's route refuses hosted backends even if someone adds one later.
The result is a starting point: point the URLs at the real servers, add client keys
(``breakeven gateway hash-key``), and run ``breakeven gateway check``.
"""

from __future__ import annotations

from typing import Any

from breakeven.catalog import Catalog
from breakeven.planner.types import Plan

__all__ = ["PROVIDERS", "gateway_config"]

# provider -> (API kind, base URL, environment variable for its key): public endpoints
PROVIDERS: dict[str, tuple[str, str, str]] = {
    "anthropic": ("anthropic", "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY"),
    "openai": ("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    "google": ("openai", "https://generativelanguage.googleapis.com/v1beta/openai",
               "GEMINI_API_KEY"),
    "together": ("openai", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    "fireworks": ("openai", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
    "groq": ("openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "deepseek": ("openai", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
}
_SELF_PORT = 8000


def gateway_config(plan: Plan, cat: Catalog, store: str = "sqlite:///breakeven-ledger.db"
                   ) -> dict[str, Any]:
    chosen = plan.chosen
    if chosen is None:
        raise ValueError("the plan chose no option, so there is no gateway to configure")
    backends: list[dict[str, Any]] = []
    self_names: list[str] = []
    dep = chosen.deployment
    if dep is not None:
        model = cat.model(dep.model)
        served = model.hf_ids[0] if model.hf_ids else model.id
        sizing = dict(dep.sizings)
        point = next((s.slo_point or s.point for s in sizing.values()
                      if (s.slo_point or s.point) is not None), None)
        capacity = point.total_tok_s if point is not None else 1000.0
        for i in range(dep.pool.replicas):
            name = f"{dep.model}-{i + 1}"
            self_names.append(name)
            backends.append({
                "name": name, "kind": "openai", "url": f"http://127.0.0.1:{_SELF_PORT + i}/v1",
                "model": served, "hosting": "self", "region": dep.offer.region,
                "gpu": {"gpu": dep.gpu, "count": dep.tp * dep.pp,
                        "usd_per_gpu_hour": dep.offer.usd_per_gpu_hour,
                        "capacity_tokens_per_s": round(capacity, 1)},
            })
    hosted_names: dict[str, str] = {}
    for placement in chosen.placements:
        if placement.side != "hosted" or placement.model in hosted_names:
            continue
        h = cat.hosted_model(placement.model)
        kind, url, key_env = PROVIDERS.get(h.provider, ("openai", "https://CHANGE-ME/v1",
                                                        f"{h.provider.upper()}_API_KEY"))
        name = h.id.replace("/", "-")
        hosted_names[h.id] = name
        backends.append({
            "name": name, "kind": kind, "url": url, "model": h.id.split("/")[-1],
            "hosting": "hosted", "region": h.regions[0], "no_train": not h.trains_on_data,
            "retention_days": 0 if h.zero_retention else 30,
            "price": {"input_per_mtok": h.input_per_mtok, "output_per_mtok": h.output_per_mtok},
            "api_key_env": key_env,
        })
    routes: dict[str, dict[str, Any]] = {}
    by_name = {s.name: s for s in plan.segments}
    for placement in chosen.placements:
        seg = by_name[placement.segment]
        alias = seg.route or seg.name
        names = self_names if placement.side == "self_hosted" else [
            hosted_names[placement.model]]
        route = routes.setdefault(alias, {"alias": alias, "backends": [],
                                          "task": "embeddings" if seg.kind == "embedding"
                                          else "chat"})
        route["backends"] += [n for n in names if n not in route["backends"]]
    return {"store": store, "backends": backends, "routes": list(routes.values()), "keys": []}
