"""Numbers a user types, in every form the CLI reads them (a click option, a comma list, a
key=value list, a length distribution): NaN, infinity and the absurd are refused in one
line, never a traceback or a run that does not end."""

from __future__ import annotations

import pytest

from tests.support.cli import run_main


@pytest.mark.parametrize("command", [
    ("size", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--rate"),
    ("size", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--ttft-ms"),
    ("size", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--length-spread"),
    ("sim", "--offline", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--rate"),
    ("sim", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale"),
    ("bench", "--url", "http://127.0.0.1:9", "--duration"),
    ("bench", "--url", "http://127.0.0.1:9", "--burstiness"),
])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_every_number_option_refuses_what_is_not_a_finite_number(capsys, command, value):
    """click's FloatRange lets NaN through any bound (no comparison with NaN fails): every
    float option of the CLI goes through the project's own range, which refuses it."""
    code, out, err = run_main(capsys, *command, value)
    assert code == 2 and out == "" and "Traceback" not in err
    assert command[-1] in err


def test_no_command_takes_clicks_own_float_range():
    """The class, not the cases: a new bounded float option cannot reintroduce NaN (a plain
    float, plan's --tokens-per-day, goes to the workload's model, which refuses it:
    tests/system/test_cli_errors.py)."""
    import click

    from breakeven.cli import cli
    from breakeven.cli._common import FloatRange

    def params(cmd: click.Command, ctx: click.Context):
        yield from cmd.params
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None
                yield from params(sub, click.Context(sub, parent=ctx, info_name=name))

    floats = [(p.name, p.type) for p in params(cli, click.Context(cli))
              if isinstance(p.type, click.FloatRange)]
    assert len(floats) >= 10
    assert [n for n, t in floats if not isinstance(t, FloatRange)] == []


BENCH = ("bench", "--url", "http://127.0.0.1:9/v1", "--model", "m", "--requests", "1")


@pytest.mark.parametrize(("option", "value"), [
    ("--rate", "nan"), ("--rate", "inf"), ("--rate", "1,nan"), ("--concurrency", "nan"),
    ("--concurrency", "inf"), ("--slo", "ttft_ms=nan"), ("--slo", "tpot_ms=inf"),
    ("--input-len", "lognormal:nan,0.5"), ("--input-len", "fixed:inf"),
    ("--input-len", "99999999999"), ("--output-len", "normal:100,1e300"),
    ("--output-len", "uniform:nan,5"),
])
def test_bench_refuses_what_is_not_a_finite_number_before_it_sends(capsys, option, value):
    """These went through as NaN (a rate of NaN, an SLO no run can meet) or crashed with
    ValueError / OverflowError tracebacks when a length was drawn."""
    code, out, err = run_main(capsys, *BENCH, option, value)
    assert code == 2 and out == "" and "Traceback" not in err
    assert option in err and len(err.strip().splitlines()) == 1


def test_a_wide_length_distribution_is_clipped_not_a_crash():
    import random

    from breakeven.bench.workload import MAX_LENGTH, Lengths

    wide = Lengths.parse("lognormal:800,40", "--input-len")
    rng = random.Random(1)
    draws = [wide.sample(rng) for _ in range(200)]
    assert max(draws) == MAX_LENGTH and min(draws) >= 1


@pytest.mark.parametrize(("args", "option"), [
    (("--requests", "1000000000"), "--requests"),
    (("--concurrency", "4,1000000000"), "--concurrency"),
    (("--sweep", "1000000000"), "--sweep"),
    (("--sweep", "3", "--sweep-concurrency", "1000000000"), "--sweep-concurrency"),
    (("--rate", "1000000000", "--duration", "100"), "--duration"),
    (("--concurrency", "4", "--duration", "1e9"), "--duration"),
])
def test_bench_refuses_a_load_it_could_not_bound_in_one_line(capsys, args, option):
    """A billion requests were built in memory before the first was sent (the command
    never ended); a load test has a most it sends, callers it holds and time it runs."""
    code, out, err = run_main(capsys, "bench", "--url", "http://127.0.0.1:9/v1", "--model",
                              "m", *args)
    assert code == 2 and out == "" and "Traceback" not in err
    assert option in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("option", "value"), [
    ("--input-len", "\u00b2"), ("--output-len", "\u0661\u0660"),
    ("--deployment", "model=llama-3.1-8b,gpu=a10g,gpus=\u00b2"),
    ("--deployment", "model=llama-3.1-8b,gpu=a10g,gpus=0"),
])
def test_digits_that_are_not_ascii_are_refused_not_a_crash(capsys, option, value):
    """``str.isdigit()`` passes superscripts and other scripts' digits, which ``int()``
    refuses (``--input-len ²`` was a ValueError traceback)."""
    code, out, err = run_main(capsys, *BENCH, option, value)
    assert code == 2 and out == "" and "Traceback" not in err
    assert option in err and len(err.strip().splitlines()) == 1


def test_no_source_file_trusts_isdigit_alone():
    """The class: every ``isdigit()`` on text that reaches ``int()`` is paired with
    ``isascii()`` (the PII scanner's digit test is about text, not a number to parse)."""
    from pathlib import Path

    import breakeven

    root = Path(breakeven.__file__).parent
    loose = [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py")
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if ".isdigit()" in line and ".isascii()" not in line
             and "pii" not in p.parts and "str.isdigit()" not in line]
    assert loose == []


def test_a_rate_level_known_only_at_run_time_is_bounded_where_it_is_scheduled():
    """A sweep's rates come from the saturation it measures, after the CLI checked its
    options: the runner refuses a level whose requests it could not hold, before building
    them (``--sweep 5 --duration 86400`` at 100 req/s would be 9.5 million)."""
    from breakeven.bench.bounds import MOST_REQUESTS
    from breakeven.bench.client import Target
    from breakeven.bench.runner import BenchError, Level, Load, Runner
    from breakeven.bench.workload import RequestSpec

    runner = Runner(Target("http://127.0.0.1:9/v1", "m"), [RequestSpec(8, prompt="x")],
                    Load(requests=None, duration_s=86_400))
    with pytest.raises(BenchError, match=f"at most {MOST_REQUESTS:,}"):
        runner._work(Level("rate", 100.0))
    _, planned = runner._work(Level("rate", 10.0))  # 950,400 requests: within the bound
    assert planned <= MOST_REQUESTS
