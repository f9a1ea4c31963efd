"""TensorRT-LLM's default capacity scheduler (GUARANTEED_NO_EVICT) in the simulator: a
request is admitted only while the KV cache holds every running request's prompt and output
whole, so none is ever preempted; vLLM's admits on what a request needs now and preempts."""

from __future__ import annotations

from dataclasses import replace

from breakeven.planner.replica import Deployment
from breakeven.planner.sizing import evaluate
from breakeven.sim.drive import run
from breakeven.sim.engine import Sequence, SimEngine, Step, engine_config
from breakeven.sim.offline import request_specs, simulate, sized_config
from tests.support.engines import toy_config


def _peak(engine: SimEngine, seqs: list[Sequence]) -> int:
    peak = [0]

    def seen(_step: Step) -> None:
        peak[0] = max(peak[0], len(engine.running))

    run(engine, seqs, after_step=seen)
    return peak[0]


def test_whole_reservations_admit_what_fits_to_the_end_and_never_preempt():
    # 70 blocks of 16 tokens; a request of 200 + 150 tokens ends holding 22 blocks
    reserving = SimEngine(replace(toy_config(blocks=70, seqs=16, budget=2048),
                                  reserve_whole=True, prefix_caching=False))
    seqs = [Sequence(200, 150) for _ in range(6)]
    assert _peak(reserving, seqs) == 3  # 3 x 22 <= 70 < 4 x 22
    assert reserving.preemptions == 0 and reserving.prompt_tokens_total == 6 * 200
    assert all(q.generated == 150 and q.preemptions == 0 for q in seqs)
    assert reserving.reserved_units == 0  # every reservation given back

    greedy = SimEngine(toy_config(blocks=70, seqs=16, budget=2048, prefix_caching=False))
    again = [Sequence(200, 150) for _ in range(6)]
    assert _peak(greedy, again) > 3  # admitted on their prompts' 13 blocks
    assert greedy.preemptions > 0


def test_a_request_larger_than_the_cache_reserves_still_runs_alone():
    engine = SimEngine(replace(toy_config(blocks=30, seqs=4, budget=2048),
                               reserve_whole=True, prefix_caching=False))
    seqs = [Sequence(300, 100), Sequence(100, 50)]  # 25 blocks, then 10: one at a time
    assert _peak(engine, seqs) == 1
    assert all(q.finished is not None for q in seqs)


def test_tensorrt_llm_queues_where_its_cache_cannot_hold_every_request_whole(catalog):
    """A closed loop above what TensorRT-LLM's cache holds whole queues the rest, as the
    sizing model's max concurrency says; with vLLM's admission the same cache runs them
    all and preempts."""
    gpu = catalog.gpu("h100-sxm")
    trt = Deployment(catalog.model("llama-3.1-70b"), gpu, catalog.engine("tensorrt-llm"),
                     "fp8", 2, gpu_memory_utilization=0.2, link=catalog.interconnect_for(gpu))
    inp, out = 4000, 2000
    s = evaluate(trt, inp, out, 64)
    holds = s.max_concurrency
    assert 4 <= holds < 64
    config = sized_config(trt, inp, out)
    assert config.reserve_whole
    engine = SimEngine(config)
    seqs = [Sequence(inp, out) for _ in range(2 * holds)]
    peak = _peak(engine, seqs)
    assert holds - 1 <= peak <= holds and engine.preemptions == 0
    greedy = SimEngine(replace(config, reserve_whole=False))
    assert _peak(greedy, [Sequence(inp, out) for _ in range(2 * holds)]) > holds
    # and the closed loop's figures: the callers beyond what it holds wait for a slot
    result = simulate(config, request_specs(3 * holds, inp, out), concurrency=2 * holds)
    assert result["ttft_ms"]["mean"] > 10 * evaluate(trt, inp, out, 1).point.ttft_ms


def test_the_engine_config_follows_the_catalog(catalog):
    gpu = catalog.gpu("h100-sxm")
    for engine, whole in (("tensorrt-llm", True), ("vllm", False), ("sglang", False)):
        dep = Deployment(catalog.model("llama-3.1-8b"), gpu, catalog.engine(engine), "fp8")
        assert engine_config(dep).reserve_whole is whole


def test_a_request_that_may_run_to_its_max_tokens_reserves_them():
    """TensorRT-LLM reserves what a request may still generate, its max_tokens, though it
    stops sooner: answers of 20 tokens asked with max_tokens 300 run as few at once as
    answers of 300 would."""
    config = replace(toy_config(blocks=70, seqs=16, budget=2048), reserve_whole=True,
                     prefix_caching=False)
    asked = [Sequence(200, 20, max_tokens=300) for _ in range(6)]
    assert _peak(SimEngine(config), asked) == 2  # ceil(500 / 16) = 32 blocks each
    short = [Sequence(200, 20) for _ in range(6)]
    assert _peak(SimEngine(config), short) == 5  # 14 blocks each: 5 x 14 <= 70


def test_the_simulators_server_reserves_each_requests_max_tokens():
    from breakeven.sim.protocol import parse_job

    job = parse_job("completion", {"model": "m", "prompt": "hello there", "max_tokens": 300,
                                   "temperature": 0}, served="m", max_model_len=4096,
                    entropy=1)
    assert job.max_tokens == 300 and 1 <= len(job.tokens) <= 300
    assert parse_job("completion", {"model": "m", "prompt": "hi"}, served="m",
                     max_model_len=4096, entropy=1).max_tokens == 16  # vLLM's default
    rest = parse_job("chat", {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                     served="m", max_model_len=4096, entropy=1)
    assert rest.max_tokens == 4096 - rest.prompt_tokens  # a chat's: the rest of the context


def test_size_and_sim_say_how_the_engine_admits(capsys, tmp_path):
    import json

    from tests.support.cli import run_main

    trace = tmp_path / "t.jsonl"
    trace.write_text('{"prompt": "hello", "max_tokens": 8}\n', encoding="utf-8")
    for engine, whole in (("tensorrt-llm", True), ("vllm", False)):
        base = ("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--quant", "fp8", "--engine",
                engine, "--json")
        code, out, _ = run_main(capsys, "size", *base)
        assert code == 0
        assert json.loads(out)["engine_settings"]["reserves_whole_requests"] is whole
        code, out, _ = run_main(capsys, "sim", "--offline", "--trace", str(trace),
                                "--concurrency", "1", *base)
        assert code == 0
        assert ("requests admitted whole" in json.loads(out)["deployment"]) is whole
