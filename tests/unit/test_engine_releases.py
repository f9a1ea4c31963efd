"""Engine releases: the batch defaults an engine set in the release a figure describes
(``Engine.at_version``, ``size --engine-version``), and launch lines that pin what was sized
whichever release runs them."""

from __future__ import annotations

import json

import pytest

from breakeven.catalog.engine import release_key
from breakeven.errors import CatalogError
from breakeven.loaders import default_catalog_dir, load_catalog
from breakeven.planner.deploy import launch_lines
from breakeven.planner.sizing import size
from tests.support.cli import run_main


@pytest.mark.parametrize(("a", "b"), [
    ("0.28.0", "0.28"), ("v0.28.0", "0.28"), ("0.5.6.post1", "0.5.6"),
    ("1.2.0rc6.post2", "1.2"), (" 0.11 ", "0.11.0")])
def test_spellings_of_one_release_are_one_release(a, b):
    assert release_key(a) == release_key(b)


def test_releases_order_by_number_not_by_text():
    assert release_key("0.9.1") < release_key("0.10.0") < release_key("0.28") < release_key(
        "1.0")


@pytest.mark.parametrize("bad", [
    "", "banana", "latest", "0..28", ".28", "0.28;rm -rf /", "0.28 0.29", "9" * 5000,
    "\u0660.28", "0.28\x00", "0.28.", "0" + "a" * 62 + "!"])
def test_what_is_not_a_release_number_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="is not a release number"):
        release_key(bad)


def test_each_release_gets_the_defaults_it_set(catalog):
    """vLLM's step budget on a B200 (178 GiB) moved from 8,192 to 16,384 tokens in 0.28;
    on an H200 (140 GiB) it did not move."""
    vllm, b200, h200 = catalog.engine("vllm"), catalog.gpu("b200"), catalog.gpu("h200")
    assert vllm.version == "0.28" and vllm.defaults_of == "0.28"
    budgets = {v: (vllm.at_version(v).budget_on(b200), vllm.at_version(v).budget_on(h200))
               for v in ("0.11", "0.27.3", "0.28.0", "0.31")}
    assert budgets == {"0.11": (8192, 8192), "0.27.3": (8192, 8192),
                       "0.28.0": (16384, 8192), "0.31": (16384, 8192)}
    assert vllm.at_version("0.27.3").defaults_of == "0.21"
    assert vllm.at_version("0.20").defaults_of == "0.11"
    assert vllm.at_version("0.31").defaults_of == "0.28"
    # a budget the deployment names wins at any release
    pinned = vllm.at_version("0.28").model_copy(update={"max_batched_tokens": 4096})
    assert pinned.budget_on(b200) == 4096


def test_a_release_older_than_the_catalog_knows_is_told_so(catalog):
    old = catalog.engine("vllm").at_version("0.6.0")
    assert old.budget_on(catalog.gpu("b200")) == 8192  # 0.11's, the oldest described
    assert old.defaults_of.startswith("0.11, the oldest release the catalog describes")


def test_size_states_the_release_and_its_defaults(capsys):
    code, out, _ = run_main(capsys, "size", "--model", "llama-3.1-8b", "--gpu", "b200",
                            "--concurrency", "4", "--json")
    st = json.loads(out)["engine_settings"]
    assert code == 0 and (st["engine_version"], st["engine_defaults_of"]) == ("0.28", "0.28")
    assert st["max_num_batched_tokens"] == 16384
    assert st["gpu_memory_utilization"] == 0.92
    code, out, _ = run_main(capsys, "size", "--model", "llama-3.1-8b", "--gpu", "b200",
                            "--concurrency", "4", "--engine-version", "0.19.1", "--json")
    st = json.loads(out)["engine_settings"]
    assert (st["engine_version"], st["engine_defaults_of"]) == ("0.19.1", "0.11")
    assert st["max_num_batched_tokens"] == 8192 and st["gpu_memory_utilization"] == 0.90
    code, out, _ = run_main(capsys, "size", "--model", "llama-3.1-8b", "--gpu", "b200",
                            "--concurrency", "4", "--engine-version", "0.6.0")
    assert code == 0 and "0.6.0 (defaults of 0.11, the oldest release" in " ".join(out.split())


@pytest.mark.parametrize("bad", ["banana", "0.28;reboot", "x" * 10_000])
def test_size_refuses_a_version_that_is_not_one_in_a_line(capsys, bad):
    code, out, err = run_main(capsys, "size", "--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                              "--engine-version", bad)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--engine-version" in err
    assert "is not a release number" in err and "Traceback" not in err
    assert len(err) < 300  # a huge value is cut, not echoed whole


def test_the_vllm_line_pins_the_budget_its_release_gave(catalog):
    """The figures for a B200 assume 0.28's 16,384-token steps; a team on 0.27 would get
    8,192 from the same line unless it says the budget, so the line always says it."""
    b200 = catalog.gpu("b200")
    for version, budget in (("0.28", 16384), ("0.27", 8192)):
        s = size(catalog.model("llama-3.1-70b"), b200,
                 catalog.engine("vllm").at_version(version), quant="fp8", gpus=1,
                 input_len=1000, output_len=200, link=catalog.interconnect_for(b200))
        assert s.fits and s.settings["max_num_batched_tokens"] == budget
        line = launch_lines(s, engines=catalog.engines)["vllm"].split()
        assert line[line.index("--max-num-batched-tokens") + 1] == str(budget)


def _catalog_with(tmp_path, old: str, new: str):
    text = (default_catalog_dir() / "engines.yaml").read_text()
    assert text.count(old) == 1
    (tmp_path / "engines.yaml").write_text(text.replace(old, new))
    return tmp_path


@pytest.mark.parametrize(("old", "new", "says"), [
    ('      - since: "0.28"', '      - since: "0.10"', "releases must follow defaults_since"),
    ('      - since: "0.28"', '      - since: "soon"', "'soon' is not a release number"),
    ('    defaults_since: "0.11"', '    defaults_since: "0.11"\n    version: "next"', "version"),
    ("budget_by_memory: [[0, 2048], [70, 8192], [160, 16384]]",
     "budget_by_memory: [[0, 2048], [70, 512], [160, 16384]]",
     "above the step token budget 512 on GPUs of 70 GiB from 0.28"),
    ("budget_by_memory: [[0, 2048], [70, 8192], [160, 16384]]",
     "budget_by_memory: [[0, 2048], [160, 8192], [70, 16384]]", "the GiB must rise"),
])
def test_a_wrong_release_entry_is_an_error_naming_file_and_field(tmp_path, old, new, says):
    with pytest.raises(CatalogError) as err:
        load_catalog(_catalog_with(tmp_path, old, new))
    assert "engines.yaml" in str(err.value) and says in str(err.value)


def test_the_simulator_runs_the_release_it_is_told(capsys, tmp_path):
    """``sim --engine-version`` runs that release's step budget and says so in its start-up
    description; a string that is not a release exits 2 before anything runs."""
    trace = tmp_path / "trace.jsonl"
    trace.write_text('{"prompt": "hello there", "max_tokens": 4}\n' * 3, encoding="utf-8")
    base = ("sim", "--offline", "--trace", str(trace), "--model", "llama-3.1-8b", "--gpu",
            "b200", "--concurrency", "2", "--json")
    said = {}
    for version in ("0.27.1", "0.28.0"):
        code, out, err = run_main(capsys, *base, "--engine-version", version)
        assert code == 0, err
        said[version] = json.loads(out)["deployment"]
    assert "(vLLM 0.27.1)" in said["0.27.1"] and "max_num_batched_tokens 8,192" in said["0.27.1"]
    assert "max_num_batched_tokens 16,384" in said["0.28.0"]
    code, out, err = run_main(capsys, *base, "--engine-version", "0.28 beta")
    assert code == 2 and out == "" and "--engine-version" in err and err.count("\n") == 1


def test_the_catalog_shows_an_engines_releases_what_changed_first(capsys):
    code, out, _ = run_main(capsys, "catalog", "engines", "vllm")
    text = " ".join(out.replace("│", " ").split())
    assert code == 0 and "releases since=0.21, gpu_memory_utilization=0.92" in text
    assert text.index("since=0.21") < text.index("since=0.28, budget_by_memory=")
    assert text.index("change=max_num_batched_tokens 16384") < text.index(
        "source=vLLM EngineArgs")
    assert "version 0.28" in text and "defaults_since 0.11" in text


def test_vllms_memory_fraction_follows_its_release(catalog):
    """0.92 from 0.21 (the CUDA graphs' memory counted inside it), 0.90 before; the launch
    line and the KV cache follow the release a deployment is sized for."""
    vllm, h100 = catalog.engine("vllm"), catalog.gpu("h100-sxm")
    fractions = {v: vllm.at_version(v).memory_fraction for v in ("0.11", "0.20.2", "0.21",
                                                                  "0.28", "0.30")}
    assert fractions == {"0.11": 0.90, "0.20.2": 0.90, "0.21": 0.92, "0.28": 0.92,
                         "0.30": 0.92}
    assert vllm.at_version("0.21").defaults_of == "0.21"
    sized = {v: size(catalog.model("llama-3.1-8b"), h100, vllm.at_version(v), quant="bf16",
                     gpus=1, input_len=1000, output_len=200) for v in ("0.20.2", "0.21")}
    gained = (sized["0.21"].memory.kv_cache_gib_per_gpu
              - sized["0.20.2"].memory.kv_cache_gib_per_gpu)
    assert gained == pytest.approx(0.02 * h100.memory_gib)
    for v, s in sized.items():
        line = launch_lines(s, engines=catalog.engines)["vllm"].split()
        assert line[line.index("--gpu-memory-utilization") + 1] == f"{fractions[v]:.2f}"


def _plan_file(tmp_path, engines):
    path = tmp_path / "w.yaml"
    path.write_text(
        "name: pinned\ntask: chat\nquality: mid\n"
        "traffic: {requests_per_day: 2000000, input_tokens: 1000, output_tokens: 250}\n"
        "slo: {ttft_ms: 2000, tpot_ms: 80}\n"
        "candidates: {open_models: [llama-3.1-70b], gpus: [mi300x], hosted: [],"
        f" quantizations: [bf16], max_gpus: 1, engines: {json.dumps(engines)}}}\n",
        encoding="utf-8")
    return str(path)


def test_a_workload_plans_against_the_release_it_names(capsys, tmp_path):
    """``candidates.engines: [vllm@0.27]``: that release's defaults (8,192-token steps on an
    MI300X, so no shorter ones to weigh; 0.92 of memory), named in the option's label."""
    code, out, err = run_main(capsys, "plan", _plan_file(tmp_path, ["vllm@0.27"]), "--json",
                              "--as-of", "2026-12-01")
    assert code == 0, err
    data = json.loads(out)
    chosen = data["chosen"]
    assert "(vllm 0.27, " in chosen["label"]
    line = chosen["deployment"]["launch"]["vllm"].split()
    assert line[line.index("--max-num-batched-tokens") + 1] == "8192"
    assert line[line.index("--gpu-memory-utilization") + 1] == "0.92"
    settings = next(iter(chosen["deployment"]["segments"].values()))["engine_settings"]
    assert (settings["engine_version"], settings["engine_defaults_of"]) == ("0.27", "0.21")
    assert not any("-token steps, not" in n for n in data["warnings"])
    # the catalog's own release is not named in labels
    code, out, _ = run_main(capsys, "plan", _plan_file(tmp_path, ["vllm"]), "--json",
                            "--as-of", "2026-12-01")
    assert code == 0 and "(vllm, " in json.loads(out)["chosen"]["label"]


@pytest.mark.parametrize(("engines", "says"), [
    (["vllm@latest"], "candidates.engines[0]: 'latest' is not a release number (an engine"),
    (["vllm@"], "'' is not a release number"),
    (["vllm", "vllm@0.28;x"], "candidates.engines[1]"),
    (["vlm@0.27"], "unknown engine 'vlm'"),
])
def test_a_workload_naming_a_release_wrongly_is_told_where(capsys, tmp_path, engines, says):
    code, out, err = run_main(capsys, "plan", _plan_file(tmp_path, engines))
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.count("\n") == 1 and says in err and "w.yaml" in err


def test_an_engine_without_releases_says_its_defaults_are_its_own_versions(catalog):
    """SGLang's row records no releases: named another release, it keeps its defaults and
    says whose they are (an older release is told the catalog does not describe it)."""
    sglang, b200 = catalog.engine("sglang"), catalog.gpu("b200")
    assert (sglang.version, sglang.releases) == ("0.5", ())
    later = sglang.at_version("0.5.19")
    assert later.defaults_of == "0.5" and later.budget_on(b200) == sglang.budget_on(b200)
    assert sglang.at_version("0.4.6").defaults_of.startswith(
        "0.5, the oldest release the catalog describes")


def test_an_engine_reference_names_an_id_and_maybe_a_release():
    from breakeven.catalog.engine import engine_ref

    assert engine_ref("vllm") == ("vllm", None)
    assert engine_ref("vllm@0.27") == ("vllm", "0.27")
    for bad in ("vllm@", "vllm@latest", "vllm@0.27@0.28"):
        with pytest.raises(ValueError, match="is not a release number"):
            engine_ref(bad)
