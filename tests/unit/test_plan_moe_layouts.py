"""The planner weighs a MoE model's expert-parallel (``ep``) and data-parallel-attention
(``dp-ep``) layouts at each GPU count, keeps the cheapest, and says which everywhere an
option is shown; dense models and engines with tensor parallelism only keep ``tp``."""

from __future__ import annotations

import json

from rich.console import Console

from breakeven.catalog import Catalog
from breakeven.loaders import parse_workload
from breakeven.planner.candidates import self_configs
from breakeven.planner.formats import accepted_layouts
from breakeven.planner.search import plan, segments_of
from breakeven.planner.sizing import Deployment, SloTarget, evaluate
from breakeven.render.data import plan_dict
from breakeven.render.html import plan_html
from breakeven.render.terminal import print_plan
from tests.support.paths import TODAY

# 8,000-token prompts, 1,000-token answers: DeepSeek-V3's MLA latent, replicated on every
# GPU under tensor parallelism, leaves room for 153 such sequences on 8 H200s; with
# attention data-parallel each GPU holds only its own sequences' latents
LONG = {"requests_per_day": 2_000_000, "input_tokens": 8000, "output_tokens": 1000}
SLO = {"ttft_ms": 10000, "tpot_ms": 150}


def _workload(models, engines=("vllm",), gpus=("h200",), traffic=LONG, **extra):
    return parse_workload({
        "name": "moe", "task": "chat", "quality": "mid", "traffic": traffic, "slo": SLO,
        "candidates": {"open_models": list(models), "gpus": list(gpus), "hosted": [],
                       "engines": list(engines), "allow_non_production": True},
        "team": {"ops_fte": 0.1}} | extra, "moe.yaml")


def _configs(catalog, w):
    return self_configs(segments_of(w), w, catalog, [], ())


def _without_layouts(catalog: Catalog, engine: str) -> Catalog:
    engines = [e.model_copy(update={"moe_layouts": ()}) if e.id == engine else e
               for e in catalog.engines]
    return Catalog(gpus=catalog.gpus, offers=catalog.offers, models=catalog.models,
                   hosted=catalog.hosted, engines=engines, quality=catalog.quality_rows,
                   interconnects=catalog.interconnects)


def test_the_layouts_an_engine_accepts(catalog):
    moe, dense = catalog.model("deepseek-v3"), catalog.model("llama-3.1-70b")
    vllm = catalog.engine("vllm")
    assert accepted_layouts(moe, vllm, 8) == ("tp", "ep", "dp-ep")
    assert accepted_layouts(moe, catalog.engine("tgi"), 8) == ("tp",)
    assert accepted_layouts(moe, catalog.engine("ollama"), 8) == ("tp",)
    assert accepted_layouts(dense, vllm, 8) == ("tp",)
    assert accepted_layouts(moe, vllm, 1) == ("tp",)  # nothing to split the experts over
    assert accepted_layouts(moe, vllm, 3) == ("tp",)  # 256 experts do not split 3 ways


def test_a_moe_model_gets_a_data_parallel_option_on_vllm_and_none_on_tgi(catalog):
    on_vllm = [c for c in _configs(catalog, _workload(["deepseek-v3"])) if c.quant == "fp8"]
    # the fewest GPUs (8: dp-ep), and one step up (16: two pipeline stages, tp only)
    assert [(c.tp * c.pp, c.layout) for c in on_vllm] == [(8, "dp-ep"), (16, "tp")]
    # the 8-GPU config carries the dp-ep sizing it was chosen by; dp-ep, weighed first,
    # serves so much more that ep's saturation throughput rules it out unsized
    assert all(s.deployment.layout == "dp-ep" for s in on_vllm[0].sizings.values())
    assert on_vllm[0].weighed == ("tp", "dp-ep") and on_vllm[1].weighed == ("tp",)
    on_tgi = _configs(catalog, _workload(["deepseek-v3"], engines=("tgi",)))
    assert on_tgi and {c.layout for c in on_tgi} == {"tp"}


def test_a_dense_model_never_gets_another_layout(catalog):
    configs = _configs(catalog, _workload(["llama-3.1-70b", "qwen2.5-72b"],
                                          gpus=("h200", "h100-sxm")))
    assert configs and {c.layout for c in configs} == {"tp"}
    assert any(c.tp > 1 for c in configs)


def test_the_planner_picks_dp_attention_where_tensor_parallelism_cannot_hold_the_batch(
        catalog):
    h200 = catalog.gpu("h200")
    tp, dp = (evaluate(Deployment(catalog.model("deepseek-v3"), h200, catalog.engine("vllm"),
                                  "fp8", 8, link=catalog.interconnect_for(h200), layout=lay),
                       8000, 1000, None, SloTarget(**SLO)) for lay in ("tp", "dp-ep"))
    # tensor parallelism is KV-bound: the SLO would allow more than its cache holds
    assert tp.slo_concurrency == tp.max_concurrency < dp.slo_concurrency
    assert tp.slo_point is not None and dp.slo_point is not None
    assert dp.slo_point.requests_per_s > 1.5 * tp.slo_point.requests_per_s

    w = _workload(["deepseek-v3"])
    with_layouts = plan(w, catalog, today=TODAY)
    tp_only = plan(w, _without_layouts(catalog, "vllm"), today=TODAY)
    chosen, before = with_layouts.chosen, tp_only.chosen
    assert chosen is not None and chosen.deployment is not None
    assert before is not None and before.deployment is not None
    assert chosen.deployment.layout == "dp-ep" and before.deployment.layout == "tp"
    assert chosen.deployment.tp * chosen.deployment.pp == 8
    def gpus(d):
        return d.pool.replicas * d.pool.gpus_per_replica

    assert gpus(chosen.deployment) < gpus(before.deployment)
    assert chosen.monthly_usd < 0.7 * before.monthly_usd
    assert "(vllm dp-ep, " in chosen.label and "dp-ep" not in before.label
    assert any("dp-ep layout" in w for w in with_layouts.warnings)
    assert not any("layout" in w for w in tp_only.warnings)


def test_the_chosen_layout_is_shown_in_json_terminal_and_html(catalog):
    result = plan(_workload(["deepseek-v3"]), catalog, today=TODAY)
    d = json.loads(json.dumps(plan_dict(result)))
    dep = d["chosen"]["deployment"]
    assert dep["layout"] == "dp-ep" and dep["tensor_parallel"] == 8
    assert {s["layout"] for s in dep["segments"].values()} == {"dp-ep"}
    assert {o["deployment"]["layout"] for o in d["options"]} == {"dp-ep", "tp"}
    assert "--data-parallel-size 8" in dep["launch"]["vllm"]
    con = Console(record=True, width=200)
    print_plan(result, con)
    text = con.export_text()
    assert "(vllm dp-ep, " in text and "--enable-expert-parallel" in text
    page = plan_html(result, catalog)
    assert "(vllm dp-ep, " in page and "--enable-dp-attention" in page


def test_a_short_answer_workload_that_tensor_parallelism_serves_within_its_slo_keeps_tp(
        catalog):
    # short requests at a tight TPOT: the SLO binds tensor parallelism well before its KV
    # cache does, and the others could not beat it even at saturation: not even sized
    w = _workload(["deepseek-v3"], traffic={"requests_per_day": 200_000, "input_tokens": 500,
                                            "output_tokens": 100})
    w = w.model_copy(update={"slo": w.slo.model_copy(update={"tpot_ms": 40.0})})
    configs = _configs(catalog, w)
    first = configs[0]
    s = next(iter(first.sizings.values()))
    assert s.slo_concurrency < s.max_concurrency
    assert first.layout == "tp" and first.weighed == ("tp",)


def test_an_slo_bound_tensor_parallel_layout_is_still_weighed_against_the_others(catalog):
    # Mixtral on 2 x A100: the TPOT SLO stops tensor parallelism below its sequence limit,
    # yet the others are sized (what they save is step time as well as cache), and the
    # layout kept is the one that serves the most within the SLO
    w = _workload(["mixtral-8x7b"], gpus=("a100-80gb",),
                  traffic={"requests_per_day": 500_000, "input_tokens": 1000,
                           "output_tokens": 250})
    w = w.model_copy(update={"slo": w.slo.model_copy(update={"ttft_ms": 2000.0,
                                                             "tpot_ms": 80.0})})
    config = next(c for c in _configs(catalog, w) if c.quant == "fp8" and c.tp == 2)
    a100 = catalog.gpu("a100-80gb")
    served = {}
    for layout in config.weighed:
        s = evaluate(Deployment(catalog.model("mixtral-8x7b"), a100, catalog.engine("vllm"),
                                "fp8", 2, link=catalog.interconnect_for(a100), layout=layout),
                     1000, 250, None, SloTarget(2000, 80))
        assert s.slo_point is not None
        served[layout] = s.slo_point.requests_per_s
        if layout == "tp":
            assert s.slo_concurrency < s.max_concurrency
    assert "dp-ep" in config.weighed
    assert config.layout == max(served, key=lambda k: served[k])


def test_the_saturation_bound_never_changes_the_plan(catalog, monkeypatch):
    # the bound only skips sizing a layout that would have lost: the same options, the same
    # layouts and prices with it as with every accepted layout sized
    import breakeven.planner.candidates as candidates

    w = _workload(["deepseek-v3", "qwen3-235b-a22b", "gpt-oss-120b", "mixtral-8x7b"],
                  gpus=("h200", "h100-sxm", "a100-80gb"),
                  traffic={"requests_per_day": 500_000, "input_tokens": 2000,
                           "output_tokens": 400},
                  segments=[{"name": "chat", "share": 0.6},
                            {"name": "nightly", "share": 0.4, "mode": "batch"}])
    pruned = plan(w, catalog, today=TODAY)
    skipped = []
    real = candidates._cannot_beat

    def never(alt, best, segs, margin):
        skipped.append(real(alt, best, segs, margin))
        return False

    monkeypatch.setattr(candidates, "_cannot_beat", never)
    full = plan(w, catalog, today=TODAY)
    assert any(skipped) and not all(skipped)  # the bound did rule some layouts out
    assert any(" dp-ep, " in o.label for o in pruned.options)
    assert [(o.label, round(o.monthly_usd, 2)) for o in pruned.options] == [
        (o.label, round(o.monthly_usd, 2)) for o in full.options]
