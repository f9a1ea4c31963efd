"""``plan``/``size``/``sim --help`` describe every option, valid values listed; the verdict
is spelt one way (SELF-HOST) in the terminal and the HTML."""

from __future__ import annotations

import click
import pytest

from breakeven.cli.plan_cmd import command as plan_command
from breakeven.cli.sim_cmd import command as sim_command
from breakeven.cli.size_cmd import command as size_command
from breakeven.loaders import parse_workload
from breakeven.planner.search import plan
from breakeven.render.html import plan_html
from tests.support.paths import TODAY


@pytest.mark.parametrize("command", [plan_command, size_command, sim_command],
                         ids=["plan", "size", "sim"])
def test_every_option_is_described(command):
    undescribed = [p.name for p in command.params
                   if isinstance(p, click.Option) and not p.help]
    assert undescribed == []


def test_valid_values_are_listed():
    ctx = click.Context(size_command)
    text = size_command.get_help(ctx)
    for value in ("vllm, sglang, tgi,", "ollama", "mxfp4", "fp8"):
        assert value in " ".join(text.split())
    assert "replicas" in " ".join(plan_command.get_help(click.Context(plan_command)).split())


def test_the_html_verdict_matches_the_terminal(catalog):
    w = parse_workload({"name": "x", "task": "chat", "quality": "mid",
                        "traffic": {"tokens_per_day": 2_000_000_000, "input_tokens": 800,
                                    "output_tokens": 200},
                        "team": {"ops_fte": 0.1}}, "w.yaml")
    result = plan(w, catalog, today=TODAY)
    assert result.verdict == "self_host"
    page = plan_html(result, catalog)
    assert "SELF-HOST" in page and "SELF_HOST" not in page


def test_the_html_has_no_empty_break_even_heading_and_cites_both_sides(catalog):
    w = parse_workload({"name": "eu", "task": "chat", "quality": "mid",
                        "traffic": {"tokens_per_day": 2_000_000_000, "input_tokens": 800,
                                    "output_tokens": 200},
                        "team": {"ops_fte": 0.1},
                        "compliance": {"custom_weights": True}}, "w.yaml")
    result = plan(w, catalog, today=TODAY)
    page = plan_html(result, catalog)
    if result.breakeven is None:
        assert "<h2>Break-even</h2>" not in page
    seed = parse_workload({"name": "s", "task": "chat", "quality": "mid",
                           "traffic": {"tokens_per_day": 5_000_000}}, "w.yaml")
    both = plan(seed, catalog, today=TODAY)
    sources = plan_html(both, catalog).split("<h2>Sources</h2>")[1]
    assert "/GPU-hour" in sources  # the self-hosted side it was weighed against
    assert both.verdict == "hosted"
