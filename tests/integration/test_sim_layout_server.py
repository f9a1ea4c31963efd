"""``breakeven sim --layout`` over HTTP (in this process): the model card says the layout
and the limits ``size`` sized for it, and the official SDK is served on it."""

from __future__ import annotations

import openai

from breakeven.loaders import load_catalog
from breakeven.planner.sizing import size
from tests.support.servers import InProcessSim

MODEL = "deepseek-v3"


def _card(*args: str) -> tuple[dict, str]:
    sim = InProcessSim("--model", MODEL, "--gpu", "h200", "--time-scale", "0.01", *args)
    try:
        with openai.OpenAI(base_url=sim.url, api_key="x", max_retries=0) as client:
            answer = client.chat.completions.create(
                model=MODEL, max_tokens=4, messages=[{"role": "user", "content": "hi"}])
            card = client.models.list().data[0].model_extra["breakeven"]
    finally:
        sim.stop()
    return card, answer.choices[0].message.content or ""


def test_the_card_says_the_layout_and_its_limits():
    cat = load_catalog()
    h200 = cat.gpu("h200")
    sized = size(cat.model(MODEL), h200, cat.engine("vllm"), quant="fp8", input_len=1,
                 output_len=1, link=cat.interconnect_for(h200), layout="dp-ep")
    card, text = _card("--layout", "dp-ep")
    assert text
    assert card["layout"] == "dp-ep" and card["gpus"] == 8 and card["tp"] == 8
    assert card["kv_cache_tokens"] == sized.memory.kv_tokens
    assert card["max_num_seqs"] == 8 * cat.engine("vllm").seqs_on(h200)
    tp, _ = _card("--max-num-seqs", "32")
    assert tp["layout"] == "tp" and tp["max_num_seqs"] == 32
    assert card["kv_cache_tokens"] > 5 * tp["kv_cache_tokens"]  # MLA latents once per rank
    per_rank, _ = _card("--layout", "dp-ep", "--max-num-seqs", "32")
    assert per_rank["max_num_seqs"] == 8 * 32
