"""The engine model: conservation of blocks and tokens, preemption, and agreement with sizing."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakeven.bench.workload import RequestSpec
from breakeven.planner.replica import Deployment
from breakeven.planner.sizing import evaluate, size
from breakeven.planner.step import decode_step_s
from breakeven.sim.drive import run, run_closed
from breakeven.sim.engine import EngineConfig, Sequence, SimEngine, Step, engine_config
from breakeven.sim.offline import simulate
from tests.support.engines import held_units, toy_config


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 400), st.integers(1, 120), st.floats(0, 0.5),
                          st.integers(0, 2)), min_size=1, max_size=40),
       st.integers(40, 120), st.sampled_from(["fcfs", "priority"]), st.booleans(),
       st.sampled_from([None, (1, 1, 3), (1, 5, 2)]),
       st.sampled_from([{}, {"recv_interval": 4}, {"batch_wait_iters": 3,
                                                   "batch_wait_tokens": 100},
                        {"balance_iters": 5, "balance_ranks": 2},
                        {"reserve_whole": True},
                        # settings no one would launch with still let every request finish
                        {"recv_interval": 10**9},
                        {"batch_wait_iters": 10**9, "batch_wait_tokens": 10**9},
                        {"balance_iters": 10**9, "balance_ranks": 3}]))
def test_every_sequence_finishes_and_blocks_are_conserved(reqs, blocks, policy, mixed, window,
                                                          holds):
    engine = SimEngine(replace(toy_config(blocks, policy=policy, mixed=mixed, window=window),
                               **holds))
    seqs = [Sequence(p, o, a, priority=pr) for p, o, a, pr in reqs if p + o <= blocks * 16]

    def conserved(_step: Step) -> None:
        assert engine.free_units >= 0
        assert engine.config.units - engine.free_units == held_units(engine)
        assert len(engine.running) <= engine.config.max_num_seqs

    run(engine, seqs, after_step=conserved)
    assert engine.free_units == engine.config.units
    if holds.get("reserve_whole") and all(engine.reservation(q) <= blocks for q in seqs):
        assert engine.preemptions == 0  # TensorRT-LLM's GUARANTEED_NO_EVICT
    for q in seqs:
        assert q.finished is not None and q.first_token is not None
        assert q.arrival <= q.first_token <= q.finished
        assert q.generated == q.output_tokens
    assert engine.generation_tokens_total == sum(q.output_tokens for q in seqs)


def test_a_full_cache_preempts_and_recomputes():
    engine = SimEngine(toy_config(blocks=40, seqs=16, budget=2048))
    seqs = [Sequence(200, 150) for _ in range(6)]  # 6 x 350 tokens > 640 in the cache
    run(engine, seqs)
    assert engine.preemptions > 0
    assert all(q.generated == 150 for q in seqs)
    assert any(q.preemptions for q in seqs)
    assert engine.prompt_tokens_total > 6 * 200  # recompute prefilled some prompts again


def test_priority_policy_admits_higher_priority_first_and_preempts_the_lowest():
    # two seats: four low-priority requests queue, then a high-priority one arrives
    engine = SimEngine(toy_config(blocks=200, seqs=2, policy="priority"))
    low = [Sequence(64, 40, 0.0, priority=5) for _ in range(4)]
    for q in low:
        engine.add(q)
    engine.step()
    high = Sequence(64, 40, engine.now, priority=0)
    engine.add(high)
    run(engine, [])
    assert high.first_token is not None
    # the two seats free together: it is admitted first, with one of the queued ones
    assert high.first_token <= min(q.first_token for q in low[2:]) < max(
        q.first_token for q in low)
    assert high.first_token > min(q.first_token for q in low[:2])  # running ones kept on
    fcfs = SimEngine(toy_config(blocks=200, seqs=2))
    low = [Sequence(64, 40, 0.0, priority=5) for _ in range(4)]
    for q in low:
        fcfs.add(q)
    fcfs.step()
    late = Sequence(64, 40, fcfs.now)
    fcfs.add(late)
    run(fcfs, [])
    assert all(late.first_token > q.first_token for q in low)  # FCFS: it waits its turn
    # a full cache: the lowest priority is preempted, never the high one
    engine = SimEngine(toy_config(blocks=40, seqs=16, budget=2048, policy="priority"))
    vip = [Sequence(200, 150, 0.1, priority=0)]  # arrives last, fits alone (22 blocks)
    rest = [Sequence(200, 150, 0.0, priority=3) for _ in range(5)]
    run(engine, vip + rest)
    assert engine.preemptions > 0
    assert not any(q.preemptions for q in vip) and any(q.preemptions for q in rest)
    assert all(q.generated == 150 for q in vip + rest)
    fcfs = SimEngine(toy_config(blocks=40, seqs=16, budget=2048))
    vip = [Sequence(200, 150, 0.1, priority=0)]
    run(fcfs, vip + [Sequence(200, 150, 0.0, priority=3) for _ in range(5)])
    assert vip[0].preemptions  # FCFS takes the newest, whatever its priority


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="scheduling policy"):
        SimEngine(toy_config(blocks=10, policy="lifo"))


def test_requests_longer_than_the_context_are_refused():
    engine = SimEngine(toy_config(blocks=10))
    assert engine.too_long(150, 20) and not engine.too_long(140, 20)  # 10 blocks: 160 tokens
    with pytest.raises(ValueError):
        engine.add(Sequence(150, 20))


def test_abort_frees_what_the_sequence_held():
    engine = SimEngine(toy_config(blocks=100))
    a, b = Sequence(100, 50), Sequence(100, 50)
    engine.add(a)
    engine.add(b)
    for _ in range(5):
        engine.step()
    engine.abort(a)
    assert a.finished is not None
    assert engine.config.units - engine.free_units == held_units(engine)
    run(engine, [])
    assert engine.free_units == engine.config.units and b.generated == 50


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 300), st.integers(1, 80), st.integers(0, 30)),
                min_size=1, max_size=25),
       st.integers(40, 100), st.booleans(), st.sampled_from([None, (1, 1, 3)]))
def test_aborts_at_any_step_keep_the_blocks_conserved(reqs, blocks, mixed, window):
    """Clients that go away mid-prompt or mid-decode (the server aborts them), in mixed and
    unmixed steps alike: whatever they held comes back and the others all finish."""
    engine = SimEngine(toy_config(blocks, mixed=mixed, window=window))
    seqs = [(Sequence(p, o, 0.0), when) for p, o, when in reqs if p + o <= blocks * 16]
    for seq, _ in seqs:
        engine.add(seq)
    step, gone = 0, set()
    while engine.busy:
        for seq, when in seqs:
            if when == step and when % 3 == 0 and not seq.done:  # a third go away
                engine.abort(seq)
                gone.add(id(seq))
        if engine.step() is None:
            break
        step += 1
        assert engine.config.units - engine.free_units == held_units(engine)
    assert engine.free_units == engine.config.units
    for seq, _ in seqs:
        assert seq.finished is not None
        if id(seq) not in gone:
            assert seq.generated == seq.output_tokens


@pytest.mark.parametrize(("model", "gpu", "quant", "inp", "out"), [
    ("llama-3.1-8b", "a10g", "bf16", 1000, 200),
    ("llama-3.1-8b", "h100-sxm", "bf16", 1000, 200),
    ("llama-3.1-70b", "h100-sxm", "fp8", 1000, 200),
    ("mixtral-8x7b", "a100-80gb", "bf16", 500, 500),
])
def test_saturation_agrees_with_the_sizing_model(catalog, model, gpu, quant, inp, out):
    """A closed loop at the planner's concurrency: within 20% of the planner's capacity."""
    s = size(catalog.model(model), catalog.gpu(gpu), catalog.engine("vllm"), quant=quant,
             input_len=inp, output_len=out)
    config = engine_config(s.deployment)
    conc = min(s.max_concurrency, config.max_num_seqs)
    rng = random.Random(7)
    specs = [RequestSpec(rng.randint(int(out * 0.8), int(out * 1.2)), prompt="x",
                         input_tokens=rng.randint(int(inp * 0.8), int(inp * 1.2)))
             for _ in range(max(300, 8 * conc))]
    sim = simulate(config, specs, concurrency=conc, warmup=0.3)
    plan = evaluate(s.deployment, inp, out, concurrency=conc).point
    assert plan is not None
    assert sim["request_throughput"] == pytest.approx(plan.requests_per_s, rel=0.2)
    assert sim["tpot_ms"]["mean"] == pytest.approx(plan.tpot_ms, rel=0.2)


def test_tpot_and_ttft_rise_with_load(catalog):
    s = size(catalog.model("llama-3.1-8b"), catalog.gpu("a10g"), catalog.engine("vllm"))
    config = engine_config(s.deployment)
    specs = [RequestSpec(200, prompt="x", input_tokens=1000) for _ in range(200)]
    runs = [simulate(config, specs, concurrency=c, warmup=0.2) for c in (1, 8, 64)]
    tpots = [r["tpot_ms"]["mean"] for r in runs]
    ttfts = [r["ttft_ms"]["mean"] for r in runs]
    assert tpots[0] < tpots[1] < tpots[2]
    assert ttfts[0] < ttfts[2]
    assert runs[2]["ttft_ms"]["mean"] > 10 * runs[0]["ttft_ms"]["mean"]  # queueing past the KV


def test_a_steps_prefill_attends_to_each_prompts_own_tokens():
    """Many prompts prefilled in one step attend to their own tokens (a short mean
    context), not to one long prompt made of every chunk; a chunked prompt's later chunk
    attends to what came before it."""
    seen: list[tuple[int, float]] = []

    def step_time(b: int, ctx: float, pre: int, pctx: float) -> float:
        seen.append((pre, pctx))
        return 0.01

    config = EngineConfig(max_num_seqs=16, max_num_batched_tokens=400, num_blocks=1000,
                          max_model_len=4000, step_time=step_time, prefix_caching=False)
    engine = SimEngine(config)
    for _ in range(4):
        engine.add(Sequence(100, 2, 0.0))
    engine.step()
    assert seen[0] == (400, 50.0)  # four 100-token prompts: each token sees ~50 on average
    seen.clear()
    long = SimEngine(replace(config, max_num_batched_tokens=200))
    long.add(Sequence(400, 2, 0.0))
    long.step()
    long.step()
    assert seen == [(200, 100.0), (200, 300.0)]  # the second chunk attends past the first


def test_the_sizing_step_charges_a_cohorts_prefill_as_separate_prompts(catalog):
    """The MLA model's prefill of 64 x 1,024-token prompts in one step costs what their own
    attention costs, far less than one 65,536-token prompt's would."""
    gpu = catalog.gpu("h200")
    dep = Deployment(catalog.model("deepseek-r1"), gpu, catalog.engine("tensorrt-llm"), "fp8",
                     8, layout="dp-ep", link=catalog.interconnect_for(gpu))
    config = engine_config(dep, max_model_len=2048)
    engine = SimEngine(config)
    for _ in range(64):
        engine.add(Sequence(1024, 16, 0.0, hashes=()))
    step = engine.step()
    assert step is not None and step.prefill_tokens == 65_536
    assert step.duration == pytest.approx(decode_step_s(dep, 0, 0.0, 65_536, 512.0))
    assert step.duration < 0.5 * decode_step_s(dep, 0, 0.0, 65_536)  # one long prompt


def test_a_request_reaches_the_scheduler_after_the_front_end():
    """A lone request's first token comes the front end's latency plus its prefill step
    after it arrived (the engine idles meanwhile); a request arriving while others decode
    joins the first step that starts after its front end, and the steps go on meanwhile."""
    config = replace(toy_config(blocks=1000), front_end_s=0.05)
    lone = SimEngine(config)
    [seq] = run(lone, [Sequence(100, 3, arrival=1.0)])
    assert seq.scheduled == pytest.approx(1.05)
    assert seq.first_token == pytest.approx(1.05 + config.step_time(0, 0.0, 100, 50.0))
    busy = SimEngine(config)
    first, late = Sequence(100, 200, 0.0), Sequence(100, 2, 0.0)
    busy.add(first)
    steps = [busy.step() for _ in range(3)]  # first's front end, its prefill, a decode
    assert steps[0] is not None and steps[0].start == pytest.approx(0.05)
    late.arrival = busy.now
    busy.add(late)
    while late.scheduled is None:
        step = busy.step()
        assert step is not None and step.decode_batch == 1  # first decodes meanwhile
    assert late.arrival + 0.05 <= late.scheduled < late.arrival + 0.05 + 0.002


def _decode_steps_waited(interval: int) -> tuple[int, Sequence]:
    """Decode-only steps a request arriving just after a decode step waits before its
    prefill, on an unmixed engine taking requests in every ``interval`` decode steps."""
    engine = SimEngine(replace(toy_config(blocks=1000, mixed=False), recv_interval=interval))
    engine.add(Sequence(100, 500, 0.0))
    engine.step()  # its prefill
    engine.step()  # a decode step: the scheduler took requests in before it (after a prefill)
    late = Sequence(100, 50, engine.now)
    engine.add(late)
    waited = 0
    while True:
        step = engine.step()
        assert step is not None
        if late.scheduled is not None:
            assert step.prefill_tokens == 100  # the step that took it in runs its prompt
            return waited, late
        assert step.prefill_tokens == 0 and step.decode_batch == 1
        waited += 1


def test_a_busy_scheduler_takes_requests_in_every_recv_interval_decode_steps():
    """SGLang's --scheduler-recv-interval N: a decode-only step counts one, a step that ran
    prompt tokens the whole interval, and the scheduler takes in what has reached it when
    the count reaches N; an idle engine takes a request in at once."""
    assert _decode_steps_waited(1)[0] == 0
    assert _decode_steps_waited(10)[0] == 9  # one of the ten had run before it arrived
    assert _decode_steps_waited(30)[0] == 29
    # right after a prompt step the scheduler looks again: no wait
    engine = SimEngine(replace(toy_config(blocks=1000, mixed=False), recv_interval=30))
    engine.add(Sequence(100, 500, 0.0))
    engine.step()
    quick = Sequence(100, 5, engine.now)
    engine.add(quick)
    engine.step()
    assert quick.scheduled is not None
    lone = SimEngine(replace(toy_config(blocks=1000), recv_interval=30))
    [seq] = run(lone, [Sequence(100, 3, arrival=1.0)])
    assert seq.scheduled == pytest.approx(1.0)


def _steps_held(**holds: int) -> int:
    """Steps a request arriving while ``decoders`` sequences decode waits before its
    prefill, on a mixed engine with TensorRT-LLM's ``holds``."""
    decoders = holds.pop("decoders", 1)
    engine = SimEngine(replace(toy_config(blocks=4000, seqs=64, budget=1024), **holds))
    for _ in range(decoders):
        engine.add(Sequence(50, 400, 0.0))
    engine.step()  # their prefill: nothing decodes yet, nothing is held
    late = Sequence(100, 5, engine.now)
    engine.add(late)
    steps = 0
    while late.scheduled is None:
        step = engine.step()
        assert step is not None and step.decode_batch == decoders
        steps += 1
    return steps - 1  # the step that took it in ran its prompt


def test_batch_waiting_holds_new_prompts_for_its_steps_or_until_its_tokens():
    """TensorRT-LLM's batch_wait_timeout_iters / batch_wait_max_tokens_ratio: while
    sequences decode, a prompt waits the timeout's steps unless the step would carry the
    token threshold; a timeout of 0 never waits (PyExecutor._waiting_requests)."""
    assert _steps_held() == 0
    assert _steps_held(batch_wait_iters=5, batch_wait_tokens=10**6) == 5
    assert _steps_held(batch_wait_iters=5, batch_wait_tokens=101) == 0  # 1 + 100 tokens
    assert _steps_held(batch_wait_iters=0, batch_wait_tokens=10**6) == 0
    assert _steps_held(batch_wait_iters=5, batch_wait_tokens=10**6, decoders=0) == 0


def test_attention_dp_balancing_holds_prompts_until_every_rank_has_one():
    """TensorRT-LLM's attention_dp_config (enable_balance, timeout_iters): a lone new prompt
    waits out the timeout's count (which runs on while nothing waits); prompts on every
    rank go at once, as does one while some rank has nothing to decode
    (PyExecutor._balance_adp_requests). A request goes to the least loaded rank."""
    waited = _steps_held(balance_iters=30, balance_ranks=4, decoders=8)
    assert 0 < waited < 30
    assert _steps_held(balance_iters=30, balance_ranks=4, decoders=2) == 0
    engine = SimEngine(replace(toy_config(blocks=4000, seqs=64, budget=1024),
                               balance_iters=30, balance_ranks=4))
    first = [Sequence(50, 400, 0.0) for _ in range(8)]
    for q in first:
        engine.add(q)
    assert sorted(q.rank for q in first) == [0, 0, 1, 1, 2, 2, 3, 3]
    engine.step()
    assert all(q.scheduled is not None for q in first)  # every rank had one
    # a sequence finishing frees its rank: the next request goes there
    engine.abort(first[5])
    nxt = Sequence(50, 5, engine.now)
    engine.add(nxt)
    assert nxt.rank == first[5].rank


def test_abort_takes_a_request_out_of_the_front_end():
    engine = SimEngine(replace(toy_config(blocks=100), front_end_s=1.0))
    seq = Sequence(100, 5, 0.0)
    engine.add(seq)
    assert engine.busy
    engine.abort(seq)
    assert seq.finished is not None and not engine.busy and engine.step() is None


def test_the_front_end_adds_to_ttft_on_both_paths(catalog):
    """The engine's front-end latency is part of TTFT in the simulation and on the analytic
    path alike, and at concurrency 1 it lowers throughput (the GPU idles meanwhile)."""
    gpu, model = catalog.gpu("h100-sxm"), catalog.model("llama-3.1-8b")
    plain = catalog.engine("vllm").model_copy(update={"front_end_ms": 0.0})
    slow = plain.model_copy(update={"front_end_ms": 40.0})
    deps = [Deployment(model, gpu, e, "fp8", 1) for e in (plain, slow)]
    specs = [RequestSpec(100, prompt="x", input_tokens=1000) for _ in range(20)]
    sims = [simulate(engine_config(d), specs, concurrency=1) for d in deps]
    assert sims[1]["ttft_ms"]["mean"] - sims[0]["ttft_ms"]["mean"] == pytest.approx(40, abs=1)
    assert sims[1]["tpot_ms"]["mean"] == pytest.approx(sims[0]["tpot_ms"]["mean"])
    assert sims[1]["request_throughput"] < sims[0]["request_throughput"]
    points = [evaluate(d, 1000, 100, concurrency=1).point for d in deps]
    assert points[0] is not None and points[1] is not None
    assert points[1].ttft_ms - points[0].ttft_ms == pytest.approx(40, abs=0.5)
    assert points[1].requests_per_s < points[0].requests_per_s
    assert points[1].ttft_ms == pytest.approx(sims[1]["ttft_ms"]["mean"], rel=0.1)


def test_throughput_counts_every_token_of_the_measured_window(catalog):
    """A closed loop's figures leave out its first turn, but its last tokens share the
    window's steps: throughput is every token generated from the first kept request's
    arrival on (it had counted only the kept requests' tokens, so 100,000 callers queued
    behind 256 slots showed 75% of the saturated throughput, one kept turn in four)."""
    from breakeven.sim.offline import closed_loop, open_loop

    gpu = catalog.gpu("h100-sxm")
    dep = Deployment(catalog.model("llama-3.1-8b"), gpu, catalog.engine("vllm"), "bf16",
                     link=catalog.interconnect_for(gpu))
    full = closed_loop(dep, 1000, 200, dep.seqs)
    queued = closed_loop(dep, 1000, 200, 8 * dep.seqs)
    assert queued["output_throughput"] == pytest.approx(full["output_throughput"], rel=0.05)
    assert queued["ttft_ms"]["mean"] > 10 * full["ttft_ms"]["mean"]  # the queue is in TTFT
    # spread lengths: the first turn ends at different times, overlapping the second
    spread = closed_loop(dep, 1000, 200, dep.seqs, spread=0.5)
    steady = evaluate(dep, 750, 150, dep.seqs).point
    assert spread["output_throughput"] == pytest.approx(steady.output_tok_s, rel=0.15)
    # an open loop's window (its first quarter left out) serves what arrives in it
    for rate in (2.0, 8.0):
        served = open_loop(dep, 1000, 200, rate, requests=800, spread=0.5, seed=1)
        assert served["request_throughput"] == pytest.approx(rate, rel=0.05)


def test_the_mark_notes_the_clock_and_tokens_when_the_marked_request_is_sent():
    engine = SimEngine(toy_config(64))
    seqs = [Sequence(32, 8, 0.0) for _ in range(6)]
    run_closed(engine, seqs, concurrency=2, mark=2)
    assert engine.marked is not None
    when, tokens = engine.marked
    assert when == seqs[2].arrival and when > 0  # sent when a first-turn request finished
    assert 0 < tokens < sum(q.output_tokens for q in seqs)
    # the requests sent before it had produced exactly the tokens counted at the mark
    first = [q for q in seqs[:2] if q.finished is not None and q.finished <= when]
    assert tokens >= sum(q.output_tokens for q in first)


def test_unmixed_steps_run_prompts_alone_first_and_the_decoders_wait(catalog):
    """SGLang's scheduler (prefill first, --enable-mixed-chunk off): a prompt that can be
    admitted gets a step of its own, so it starts sooner than under vLLM's mixed steps and
    the sequences decoding meanwhile skip that step."""
    def trace(mixed: bool) -> tuple[SimEngine, list[Sequence], list[Step]]:
        engine = SimEngine(toy_config(200, budget=64, mixed=mixed))
        seqs = [Sequence(32, 40, 0.0) for _ in range(4)] + [Sequence(200, 5, 0.01)]
        steps: list[Step] = []
        run(engine, seqs, after_step=steps.append)
        return engine, seqs, steps

    mixed_engine, mixed, mixed_steps = trace(True)
    alone_engine, alone, alone_steps = trace(False)
    assert all(s.decode_batch == 0 for s in alone_steps if s.prefill_tokens)  # never mixed
    assert any(s.decode_batch and s.prefill_tokens for s in mixed_steps)
    late_mixed, late_alone = mixed[-1], alone[-1]
    assert late_alone.first_token - late_alone.arrival < late_mixed.first_token - late_mixed.arrival
    # the decoders waited through the late prompt's steps: they finish later
    assert max(q.finished for q in alone[:4]) > max(q.finished for q in mixed[:4])
    assert alone_engine.decode_steps < alone_engine.steps
    assert mixed_engine.decode_steps == mixed_engine.steps
    # every token still comes out, once
    assert alone_engine.generation_tokens_total == sum(q.output_tokens for q in alone)


def test_sglang_runs_unmixed_and_vllm_mixed(catalog):
    gpu = catalog.gpu("h100-sxm")
    model = catalog.model("llama-3.1-8b")
    for engine, mixed in (("sglang", False), ("vllm", True), ("tensorrt-llm", True)):
        dep = Deployment(model, gpu, catalog.engine(engine), "bf16",
                         link=catalog.interconnect_for(gpu))
        assert engine_config(dep).mixed is mixed
        assert size(model, gpu, catalog.engine(engine)).settings["mixed_batches"] is mixed


def test_local_layers_keep_a_window_so_more_long_sequences_run_at_once():
    """100 blocks, prompts of 25 blocks: with every layer global four run at once; with half
    the layers keeping a 2-block window each holds 25 + 2 layer-blocks of 200, seven at once,
    and decoding past the window (a 26th block) takes only the global layers' one."""
    def peak(window: tuple[int, int, int] | None) -> tuple[int, SimEngine]:
        engine = SimEngine(toy_config(100, budget=4096, window=window))
        most = 0

        def note(_step: Step) -> None:
            nonlocal most
            most = max(most, len(engine.running))
            assert engine.config.units - engine.free_units == held_units(engine)

        run(engine, [Sequence(400, 10, 0.0) for _ in range(8)], after_step=note)
        return most, engine

    everywhere, windowed = peak(None), peak((1, 1, 2))
    assert (everywhere[0], windowed[0]) == (4, 7)
    assert windowed[1].preemptions == 0 and windowed[1].free_units == 200
