"""Every deployment the bundled catalog can describe, sized: no figure beats the hardware.

The other sizing tests pin chosen cases; this one walks every model x GPU x engine x weight
format x MoE layout at three request shapes (a lone request, saturation, long prompts) on
the analytic path, so a catalog row or a step-model change that breaks physics anywhere (a
TPOT faster than reading the active weights at the HBM's datasheet bandwidth, throughput
above the tensor cores' peak, weights and KV cache over the GPU's memory, a figure that is
zero, negative or not finite) fails here rather than in a user's plan. Every case is either
refused (an ``InputError`` with a message), does not fit (with a reason) or is in bounds.
"""

from __future__ import annotations

import math

from breakeven.errors import InputError
from breakeven.planner.formats import bytes_per_weight
from breakeven.planner.sizing import size

SHAPES = ((1000, 200, 1), (1000, 200, None), (8000, 1000, None))
FORMATS = ("bf16", "fp8", "int4", "fp4", "mxfp4")


def _cases(catalog):
    for m in catalog.models:
        for g in catalog.gpus:
            for e in catalog.engines:
                if g.vendor not in e.vendors:
                    continue
                for q in (q for q in FORMATS if q in e.quantizations):
                    for layout in ("tp", "ep", "dp-ep") if m.moe else ("tp",):
                        yield m, g, e, q, layout


def _out_of_bounds(s, input_len) -> list[str]:
    """What in a fitting sizing breaks physics (100% of the datasheet's bandwidth and peak
    FLOPs over all the replica's GPUs)."""
    m, g, dep, p = s.deployment.model, s.deployment.gpu, s.deployment, s.point
    figures = {"ttft_ms": p.ttft_ms, "tpot_ms": p.tpot_ms, "output_tok_s": p.output_tok_s,
               "total_tok_s": p.total_tok_s}
    wrong = [f"{k} = {v}" for k, v in figures.items() if not math.isfinite(v) or v <= 0]
    # the embedding table is a look-up, not read each step
    active = m.active_params_b * 1e9 - m.vocab * m.hidden
    peak = max(x for x in (g.bf16_tflops, g.fp8_tflops, g.fp4_tflops) if x) * 1e12
    read_ms = active * bytes_per_weight(dep.quant) / (dep.gpus * g.bandwidth_gbs * 1e9) * 1e3
    if m.kind == "chat" and p.tpot_ms < read_ms:
        wrong.append(f"TPOT {p.tpot_ms:.3f} ms < {read_ms:.3f} ms to read the active weights")
    prefill_ms = 2 * active * input_len / (dep.gpus * peak) * 1e3
    if p.ttft_ms < prefill_ms:
        wrong.append(f"TTFT {p.ttft_ms:.3f} ms < {prefill_ms:.3f} ms of prefill at peak FLOPs")
    ceiling = peak * dep.gpus / (2 * active)
    if p.total_tok_s > ceiling:
        wrong.append(f"{p.total_tok_s:,.0f} tok/s > the {ceiling:,.0f} peak FLOPs allow")
    used = s.memory.weights_gib_per_gpu + s.memory.kv_cache_gib_per_gpu
    if used > g.memory_gib:
        wrong.append(f"weights + KV {used:.1f} GiB > the GPU's {g.memory_gib} GiB")
    return wrong


def test_no_catalog_deployment_beats_the_hardware_or_fails_without_a_reason(catalog):
    problems, fitted = [], 0
    for m, g, e, q, layout in _cases(catalog):
        for input_len, output_len, conc in SHAPES:
            where = f"{m.id} {q} {layout} on {g.id} ({e.id}) {input_len}/{output_len} c={conc}"
            try:
                s = size(m, g, e, quant=q, input_len=input_len, output_len=output_len,
                         concurrency=conc, layout=layout)
            except InputError as exc:
                if not str(exc):
                    problems.append(f"{where}: refused without a message")
                continue
            if not s.fits or s.point is None:
                if not s.reason:
                    problems.append(f"{where}: does not fit, and no reason given")
                continue
            fitted += 1
            problems += [f"{where}: {w}" for w in _out_of_bounds(s, input_len)]
    assert fitted > 10_000  # the walk reached the catalog, not a handful of rows
    assert not problems, "\n".join(problems[:20])


def test_latency_grows_with_the_prompt_and_the_batch_everywhere(catalog):
    """TTFT rises with the prompt; a saturated replica's TPOT is no better than a lone
    request's; saturation serves at least a lone request's throughput."""
    problems = []
    for m, g, e, q, layout in _cases(catalog):
        if m.kind != "chat":
            continue
        try:
            lone, full, long = (size(m, g, e, quant=q, input_len=i, output_len=o,
                                     concurrency=c, layout=layout) for i, o, c in SHAPES)
        except InputError:
            continue
        if not (lone.fits and full.fits and long.fits):
            continue
        where = f"{m.id} {q} {layout} on {lone.deployment.gpus} x {g.id} ({e.id})"
        if long.deployment.gpus == lone.deployment.gpus:
            one = size(m, g, e, quant=q, input_len=8000, output_len=1000, concurrency=1,
                       layout=layout, gpus=lone.deployment.gpus)
            if one.fits and one.point.ttft_ms <= lone.point.ttft_ms:
                problems.append(f"{where}: TTFT at 8000 tokens <= at 1000")
        if full.point.tpot_ms < lone.point.tpot_ms * 0.999:
            problems.append(f"{where}: TPOT saturated {full.point.tpot_ms} < lone "
                            f"{lone.point.tpot_ms}")
        if full.point.output_tok_s < lone.point.output_tok_s * 0.999:
            problems.append(f"{where}: saturated throughput below a lone request's")
    assert not problems, "\n".join(problems[:20])


def test_every_gpu_count_size_picks_it_accepts_when_asked_for(catalog):
    """The default (the fewest GPUs that fit) and an explicit ``gpus`` go through the same
    rules: a 64-GPU expert-parallel GLM-4.6 (8 per stage x 8 stages) was picked by default
    and refused as "64 GPUs do not split the 160 experts" when asked for, the explicit path
    checking the experts against all the GPUs instead of a stage's."""
    problems = []
    for m, g, e, q, layout in _cases(catalog):
        try:
            s = size(m, g, e, quant=q, layout=layout)
        except InputError:
            continue
        if not s.fits:
            continue
        d = s.deployment
        try:
            again = size(m, g, e, quant=q, layout=layout, gpus=d.gpus)
        except InputError as exc:
            problems.append(f"{m.id} {q} {layout} on {d.gpus} x {g.id} ({e.id}): {exc}")
            continue
        if (again.deployment.tp, again.deployment.pp) != (d.tp, d.pp) or not again.fits:
            problems.append(f"{m.id} {q} {layout} on {d.gpus} x {g.id} ({e.id}): another "
                            f"layout when asked for ({again.deployment.tp} x "
                            f"{again.deployment.pp} against {d.tp} x {d.pp})")
    assert not problems, "\n".join(problems[:20])
