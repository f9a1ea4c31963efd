"""Layouts engines accept, refusals, impractical fits and the exit codes of ``size``."""

from __future__ import annotations

import json
import shutil

import pytest

from breakeven.errors import InputError
from breakeven.planner.formats import layout_refusal
from breakeven.planner.sizing import layouts, size
from tests.support.cli import run_main


@pytest.mark.parametrize("gpus", [3, 5, 6, 12])
def test_a_gpu_count_no_accepted_layout_has_is_refused(catalog, gpus):
    with pytest.raises(InputError, match="valid GPU counts: 1, 2, 4, 8"):
        size(catalog.model("llama-3.1-70b"), catalog.gpu("h100-sxm"), catalog.engine("vllm"),
             gpus=gpus)


def test_tp_beyond_a_node_and_kv_heads_the_engine_cannot_split(catalog):
    m, gpu = catalog.model("llama-3.1-8b"), catalog.gpu("h100-sxm")
    assert "node" in (layout_refusal(m, gpu, catalog.engine("vllm"), 16, 1) or "")
    odd = m.model_copy(update={"heads": 24, "kv_heads": 3})
    assert "KV heads" in (layout_refusal(odd, gpu, catalog.engine("vllm"), 2, 1) or "")
    assert (2, 1) not in layouts(odd, gpu, 8, catalog.engine("vllm"))
    assert layout_refusal(odd, gpu, catalog.engine("vllm"), 3, 1) is None  # vLLM runs TP 3
    assert (8, 1) in layouts(m, gpu, 8, catalog.engine("vllm"))


def test_a_fit_no_interactive_slo_can_use_is_marked_impractical(catalog):
    s = size(catalog.model("llama-3.1-405b"), catalog.gpu("a10g"), catalog.engine("vllm"),
             gpus=64)
    assert s.fits and s.deployment.tp == 8 and s.deployment.pp == 8
    assert s.impractical is not None and "no interactive SLO" in s.impractical
    ok = size(catalog.model("llama-3.1-8b"), catalog.gpu("h100-sxm"), catalog.engine("vllm"))
    assert ok.impractical is None


def _size(capsys, *args: str) -> tuple[int, str, str]:
    return run_main(capsys, "size", *args)


def test_size_exit_codes(capsys):
    code, _, err = _size(capsys, "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--gpus", "3")
    assert code == 2 and "does not divide the 64 attention heads" in err
    assert len(err.strip().splitlines()) == 1
    code, out, _ = _size(capsys, "--model", "llama-3.1-405b", "--gpu", "a10g", "--gpus", "8",
                         "--json")
    assert code == 3 and json.loads(out)["fits"] is False
    code, _, err = _size(capsys, "--model", "llama-3.1-8b", "--gpu", "l40s", "--quant", "fp4")
    assert code == 2 and "FP4 tensor cores" in err


def test_size_json_states_provenance_and_engine_settings(capsys, catalog):
    code, out, _ = _size(capsys, "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--quant",
                         "fp8", "--concurrency", "32", "--length-spread", "0.2", "--json")
    data = json.loads(out)
    assert code == 0 and data["provenance"]["ttft_ms"] == "simulated"
    assert data["provenance"]["memory"] == "roofline"
    vllm = catalog.engine("vllm")
    # vLLM's default on an 80 GB H100 (get_batch_defaults), stated
    assert data["engine_settings"]["max_num_seqs"] == vllm.seqs_on(catalog.gpu("h100-sxm"))
    assert data["engine_settings"]["max_num_batched_tokens"] == 8192
    assert data["engine_settings"]["kv_cache_dtype"] == "fp8"  # vLLM's FP8 runs
    assert data["engine_settings"]["sequence_overhead_us"] == vllm.sequence_overhead_us > 0
    assert data["simulation"]["length_spread"] == 0.2
    assert data["simulation"]["roofline"]["concurrency"] == 32


def test_the_scheduler_recv_interval_is_sglangs_and_delays_only_the_first_token(capsys):
    """SGLang's --scheduler-recv-interval, as InferenceX's runs set it: a closed loop's TTFT
    rises with the interval (arrivals wait for the scheduler to look), TPOT and throughput
    hardly move; the setting is stated; an engine without it refuses it in one line."""
    base = ("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--quant", "fp8", "--engine",
            "sglang", "--concurrency", "16", "--input-len", "1000", "--output-len", "500",
            "--length-spread", "0.2", "--json")
    runs = []
    for interval in ("1", "10", "30"):
        code, out, _ = _size(capsys, *base, "--scheduler-recv-interval", interval)
        assert code == 0
        runs.append(json.loads(out))
        assert runs[-1]["engine_settings"]["scheduling"]["recv_interval"] == int(interval)
    ttft = [r["ttft_ms"] for r in runs]
    assert ttft[0] < ttft[1] < ttft[2]
    assert runs[2]["ttft_ms"] - runs[0]["ttft_ms"] > 10 * runs[0]["tpot_ms"]
    for r in runs[1:]:
        assert r["tpot_ms"] == pytest.approx(runs[0]["tpot_ms"], rel=0.1)
        assert r["output_tok_s"] == pytest.approx(runs[0]["output_tok_s"], rel=0.1)
    code, _, err = _size(capsys, "--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                         "--scheduler-recv-interval", "10")
    assert code == 2 and "vLLM has no scheduler receive interval" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "why"), [
    (("--engine", "sglang", "--batch-wait-timeout-iters", "40"), "SGLang has no batch waiting"),
    (("--engine", "vllm", "--layout", "dp-ep", "--adp-balance-timeout-iters", "60"),
     "vLLM has no attention-DP balancing"),
    (("--engine", "tensorrt-llm", "--adp-balance-timeout-iters", "60"), "needs the dp-ep"),
    (("--engine", "tensorrt-llm", "--layout", "dp-ep", "--batch-wait-timeout-iters", "40"),
     "only without attention DP"),
])
def test_scheduler_holds_an_engine_or_layout_does_not_have_are_refused(capsys, args, why):
    code, _, err = _size(capsys, "--model", "deepseek-r1", "--gpu", "b200", "--gpus", "8",
                         *args)
    assert code == 2 and why in err and len(err.strip().splitlines()) == 1


def test_tensorrt_llms_holds_delay_the_first_token_and_are_stated(capsys):
    """Batch waiting (TP) and attention-DP balancing (dp-ep), as InferenceX's DeepSeek-R1
    runs set them: a closed loop's TTFT rises by steps' worth; TPOT does not rise (prompts
    held go together, in fewer of the eager prompt steps that stall the decoders)."""
    base = ("--model", "deepseek-r1", "--gpu", "b200", "--gpus", "8", "--engine",
            "tensorrt-llm", "--input-len", "1024", "--output-len", "1024", "--length-spread",
            "0.2", "--json")
    for layout, concurrency, holds in (
            ("tp", "64", ("--batch-wait-timeout-iters", "40", "--batch-wait-max-tokens-ratio",
                          "0.8")),
            ("dp-ep", "128", ("--adp-balance-timeout-iters", "60"))):
        plain = json.loads(_size(capsys, *base, "--layout", layout, "--concurrency",
                                 concurrency)[1])
        code, out, _ = _size(capsys, *base, "--layout", layout, "--concurrency", concurrency,
                             *holds)
        held = json.loads(out)
        assert code == 0
        assert held["ttft_ms"] > plain["ttft_ms"] + 5 * plain["tpot_ms"]
        assert plain["tpot_ms"] * 0.7 < held["tpot_ms"] < plain["tpot_ms"] * 1.05
        settings = held["engine_settings"]["scheduling"]
        assert settings["batch_wait_iters" if layout == "tp" else "adp_balance_iters"] > 0


def test_a_request_past_the_context_is_told_so_not_to_buy_more_memory(catalog):
    from breakeven.planner.sizing import size

    s = size(catalog.model("llama-3.1-8b"), catalog.gpu("a10g"), catalog.engine("vllm"),
             input_len=200_000, output_len=100)
    assert not s.fits
    assert "131,072-token context" in (s.reason or "")
    assert s.suggestions and "longer context" in s.suggestions[0]
    assert not any("more memory" in h for h in s.suggestions)


def test_vllm_refuses_a_token_budget_below_its_sequences_and_sglang_does_not(catalog):
    """vLLM's SchedulerConfig will not start with max_num_batched_tokens < max_num_seqs (a
    step must hold one decode token per running sequence); the default budget on a GPU
    under 70 GB (2,048) refuses 4,096 sequences; per rank under dp-ep, as vLLM's DP engines."""
    model, h100 = catalog.model("llama-3.1-8b"), catalog.gpu("h100-sxm")
    # vLLM's default on an 80 GB H100 is 1,024 sequences
    with pytest.raises(InputError, match="max_batched_tokens 1,023 below max_num_seqs 1,024"):
        size(model, h100, catalog.engine("vllm"), max_batched_tokens=1023)
    assert size(model, h100, catalog.engine("vllm"), max_batched_tokens=1024).fits
    with pytest.raises(InputError, match="max_batched_tokens 255 below max_num_seqs 256"):
        size(model, catalog.gpu("a100-80gb"), catalog.engine("vllm"), max_batched_tokens=255)
    with pytest.raises(InputError, match="2,048 below max_num_seqs 4,096"):
        size(model, catalog.gpu("l4"), catalog.engine("vllm"), max_num_seqs=4096)
    assert size(model, h100, catalog.engine("sglang"), max_batched_tokens=255).fits
    moe = catalog.model("qwen3-30b-a3b")
    ok = size(moe, h100, catalog.engine("vllm"), gpus=2, layout="dp-ep",
              max_num_seqs=64, max_batched_tokens=64)
    assert ok.fits and ok.deployment.seqs == 128  # 64 per rank on each of the 2 ranks


def test_callers_beyond_the_replicas_slots_are_said_to_queue(capsys, catalog):
    """1,000 callers on a replica that runs 256 at once (vLLM's default on an A100): 744
    wait, which is why TTFT is tens of seconds; the JSON counts them, the table says so; a
    rate or a fitting loop has none."""
    code, out, _ = _size(capsys, "--model", "llama-3.1-8b", "--gpu", "a100-80gb",
                         "--concurrency", "1000", "--json")
    data = json.loads(out)
    assert code == 0 and data["max_concurrency"] == 256 and data["queued"] == 744
    assert data["ttft_ms"] > 10_000
    code, out, _ = _size(capsys, "--model", "llama-3.1-8b", "--gpu", "a100-80gb",
                         "--concurrency", "1000")
    assert "744 of the 1,000 callers wait" in " ".join(out.split())
    model, gpu = catalog.model("llama-3.1-8b"), catalog.gpu("a100-80gb")
    vllm = catalog.engine("vllm")
    assert size(model, gpu, vllm, concurrency=256).queued == 0
    assert size(model, gpu, vllm, rate=2.0).queued == 0


@pytest.mark.parametrize(("old", "new", "says"), [
    ("    seqs_by_memory: [[70, 1024]]\n", "    seqs_by_memory: [[70, 9000]]\n",
     "max_num_seqs 9000 is above the step token budget 8192 on GPUs of 70 GiB"),
    ("    seqs_by_memory: [[70, 1024]]\n", "    seqs_by_memory: [[70, 1024], [40, 512]]\n",
     "seqs_by_memory .* the GiB must rise"),
    ("    by_memory_except: [a100-40gb, a100-80gb]\n", "    by_memory_except: [a100]\n",
     "unknown GPU 'a100'")])
def test_vllms_defaults_by_gpu_are_checked_where_the_catalog_is_read(tmp_path, old, new, says):
    from breakeven.errors import CatalogError
    from breakeven.loaders import default_catalog_dir, load_catalog

    shutil.copytree(default_catalog_dir(), tmp_path, dirs_exist_ok=True)
    text = (tmp_path / "engines.yaml").read_text()
    assert old in text
    (tmp_path / "engines.yaml").write_text(text.replace(old, new, 1))
    with pytest.raises(CatalogError, match=says):
        load_catalog(tmp_path)


def test_a_catalog_whose_engine_defaults_the_engine_refuses_is_an_error(tmp_path):
    """The planner launches every engine with its catalog defaults: a vLLM row whose
    default_max_seqs the default token budget cannot hold would plan deployments vLLM
    will not start, so the catalog is refused where it is read, naming the file."""
    from breakeven.errors import CatalogError
    from breakeven.loaders import default_catalog_dir, load_catalog

    text = (default_catalog_dir() / "engines.yaml").read_text()
    assert "    default_max_seqs: 256\n" in text
    (tmp_path / "engines.yaml").write_text(
        text.replace("    default_max_seqs: 256\n", "    default_max_seqs: 4096\n", 1))
    with pytest.raises(CatalogError, match="max_num_seqs 4096 is above the step token "
                                           "budget 2048 on GPUs of 0 GiB") as err:
        load_catalog(tmp_path)
    assert "engines.yaml" in str(err.value)


def test_size_states_whether_prefill_is_graphed_and_what_eager_launches_cost(capsys):
    base = ("--model", "deepseek-r1", "--gpu", "b200", "--gpus", "8", "--engine",
            "tensorrt-llm", "--concurrency", "1", "--input-len", "1024", "--output-len",
            "128", "--json")
    plain = json.loads(_size(capsys, *base)[1])
    graphed = json.loads(_size(capsys, *base, "--prefill-cuda-graphs")[1])
    eager_ms = plain["engine_settings"]["eager_prefill_ms"]
    assert eager_ms > 20 and not plain["engine_settings"]["prefill_cuda_graphs"]
    assert graphed["engine_settings"]["eager_prefill_ms"] == 0
    assert graphed["engine_settings"]["prefill_cuda_graphs"]
    # a 1k prompt's GPU work is shorter than the launches: the lone request waits on them
    assert graphed["ttft_ms"] < plain["ttft_ms"]
    assert plain["ttft_ms"] - plain["engine_settings"]["front_end_ms"] >= eager_ms
