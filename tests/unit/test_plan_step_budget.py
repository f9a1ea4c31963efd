"""Where an engine's default step budget is above 8,192 tokens (vLLM from 0.28 and SGLang on
GPUs of 160 GiB and more: 16,384), the planner also weighs 8,192-token steps and keeps them
where they serve the segments cheaper: a smaller activation peak leaves the KV cache room
for more sequences, and a prompt chunk stretches fewer decode steps."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from breakeven.catalog import Catalog
from breakeven.loaders import parse_workload
from breakeven.planner.candidates import SHORTER_STEPS, _same_edges, _sized, self_configs
from breakeven.planner.deploy import launch_lines
from breakeven.planner.search import plan, segments_of
from breakeven.planner.sizing import Deployment, evaluate
from breakeven.render.data import plan_dict
from tests.support.paths import TODAY


def _workload(models, gpus, engines=("vllm",), **candidates):
    return parse_workload({
        "name": "budget", "task": "chat", "quality": "mid",
        "traffic": {"requests_per_day": 2_000_000, "input_tokens": 1000,
                    "output_tokens": 250},
        "slo": {"ttft_ms": 2000, "tpot_ms": 80},
        "segments": [{"name": "chat", "share": 0.5},
                     {"name": "bulk", "share": 0.5, "mode": "batch", "task": "extraction"}],
        "candidates": {"open_models": list(models), "gpus": list(gpus), "hosted": [],
                       "engines": list(engines), "allow_non_production": True}
        | candidates,
        "team": {"ops_fte": 0.1}}, "budget.yaml")


def _configs(catalog, w):
    return self_configs(segments_of(w), w, catalog, [], ())


def _at(catalog: Catalog, engine: str, version: str) -> Catalog:
    engines = [e.at_version(version) if e.id == engine else e for e in catalog.engines]
    return Catalog(gpus=catalog.gpus, offers=catalog.offers, models=catalog.models,
                   hosted=catalog.hosted, engines=engines, quality=catalog.quality_rows,
                   interconnects=catalog.interconnects)


def test_shorter_steps_are_kept_where_they_leave_room_for_more_sequences(catalog):
    """Llama 3.1 70B BF16 on one MI300X (192 GB): vLLM 0.28's 16,384-token steps hold an
    activation peak the KV cache pays for; at 8,192 the batch segment runs more sequences
    and serves more, so the planner keeps 8,192 and the launch line says it."""
    w = _workload(["llama-3.1-70b"], ["mi300x"])
    cfg = next(c for c in _configs(catalog, w) if c.quant == "bf16" and c.tp * c.pp == 1)
    dep = cfg.sizings["bulk"].deployment
    assert dep.max_batched_tokens == SHORTER_STEPS
    default = replace(dep, max_batched_tokens=None)
    assert default.batched_tokens == 16384
    assert dep.mem.kv_tokens > default.mem.kv_tokens
    at_default = evaluate(default, 1000, 250)
    assert cfg.sizings["bulk"].max_concurrency > at_default.max_concurrency
    assert cfg.capacity["bulk"] > at_default.point.requests_per_s
    line = launch_lines(cfg.sizings["bulk"], engines=catalog.engines)["vllm"].split()
    assert line[line.index("--max-num-batched-tokens") + 1] == "8192"


def test_the_default_stays_where_shorter_steps_do_not_pay(catalog):
    """In FP8 on a B200 the same model's KV cache holds 470+ sequences at 1,000 + 250
    tokens: the shorter steps serve no cheaper, and the default is launched (and stated).
    (In BF16 on one B200 the cache holds 64, and the shorter steps' 67 win.)"""
    w = _workload(["llama-3.1-70b"], ["b200"], quantizations=["fp8"])
    configs = _configs(catalog, w)
    assert configs
    for cfg in configs:
        dep = next(iter(cfg.sizings.values())).deployment
        assert dep.max_batched_tokens is None and dep.batched_tokens == 16384
        line = launch_lines(next(iter(cfg.sizings.values())),
                            engines=catalog.engines)["vllm"].split()
        assert line[line.index("--max-num-batched-tokens") + 1] == "16384"


def test_no_shorter_steps_are_weighed_where_the_default_is_not_longer(catalog):
    """vLLM 0.27 gives an MI300X 8,192-token steps already: nothing else to weigh."""
    older = _at(catalog, "vllm", "0.27")
    w = _workload(["llama-3.1-70b", "deepseek-v3"], ["mi300x"])
    for cfg in _configs(older, w):
        for s in cfg.sizings.values():
            assert s.deployment.max_batched_tokens is None
            assert s.deployment.batched_tokens // s.deployment.ranks == 8192


def test_the_plan_launches_the_budget_it_chose_and_says_why(catalog):
    w = _workload(["llama-3.1-70b"], ["mi300x"], quantizations=["bf16"], max_gpus=1)
    data = plan_dict(plan(w, catalog, today=TODAY))
    chosen = data["chosen"]["deployment"]
    assert "--max-num-batched-tokens 8192" in chosen["launch"]["vllm"]
    assert {s["engine_settings"]["max_num_batched_tokens"]
            for s in chosen["segments"].values()} == {SHORTER_STEPS}
    said = [n for n in data["warnings"] if "-token steps, not" in n]
    assert len(said) == 1 and "8,192-token steps, not vLLM 0.28's default 16,384" in said[0]
    # where the default is kept, nothing is said
    kept = plan_dict(plan(_workload(["llama-3.1-70b"], ["b200"]), catalog, today=TODAY))
    assert "--max-num-batched-tokens 16384" in kept["chosen"]["deployment"]["launch"]["vllm"]
    assert not any("-token steps, not" in n for n in kept["warnings"])


@pytest.mark.parametrize(("model", "gpu", "quant", "engine"), [
    ("llama-3.1-70b", "mi300x", "bf16", "vllm"), ("llama-3.1-8b", "b200", "bf16", "vllm"),
    ("deepseek-v3", "mi300x", "fp8", "vllm"), ("qwen3-235b-a22b", "b200", "bf16", "vllm"),
    ("gpt-oss-120b", "mi355x", "mxfp4", "vllm"), ("llama-3.1-8b", "b200", "bf16", "sglang"),
    ("llama-3.1-70b", "b200", "fp8", "sglang")])
def test_a_deployment_pruned_as_serving_the_same_serves_the_same(catalog, model, gpu, quant,
                                                                 engine):
    """``_same_edges`` skips sizing the shorter steps where two solves a segment show they
    serve each segment exactly as the default does; sized anyway, they must."""
    w = _workload([model], [gpu])
    segs = segments_of(w)
    m, g = catalog.model(model), catalog.gpu(gpu)
    checked = 0
    for tp, layout in itertools.product((1, 2, 4, 8), ("tp", "dp-ep")):
        dep = Deployment(m, g, catalog.engine(engine), quant, tp, layout=layout,
                         link=catalog.interconnect_for(g))
        if layout == "dp-ep" and (m.moe is None or tp == 1):
            continue
        best, _ = _sized(dep, segs, None)
        if best is None:
            continue
        alt = replace(dep, max_batched_tokens=SHORTER_STEPS)
        if _same_edges(alt, best, segs):
            checked += 1
            other, _ = _sized(alt, segs, None)
            assert other is not None and other[1] == best[1]
    if model == "llama-3.1-8b":  # short prompts on a big GPU: the budget never binds
        assert checked
    # (SGLang's default chunk on a B200 is 16,384 too, so both engines are weighed)
