"""The live sim's virtual clock against a real client: a closed-loop caller's turn-around
(here a deliberate pause between its requests, as a busy host would make one) takes no
simulated time on ``--clock virtual``, and all of it, scaled, on the wall clock."""

from __future__ import annotations

import itertools
import time

import openai
import pytest

from tests.support.servers import InProcessSim

MODEL = "llama-3.1-8b"


def _gaps(clock: str) -> tuple[list[float], dict]:
    """Simulated seconds between one request's end and the next one's arrival, for one
    caller that waits 20 ms (wall) before each next request, on a keep-alive connection."""
    sim = InProcessSim("--model", MODEL, "--gpu", "a10g", "--time-scale", "0.01",
                       "--clock", clock)
    try:
        finished = sim.watch()
        with openai.OpenAI(base_url=sim.url, api_key="x", max_retries=0) as client:
            for k in range(4):
                client.chat.completions.create(
                    model=MODEL, max_tokens=8, extra_body={"ignore_eos": True},
                    messages=[{"role": "user", "content": f"question {k}"}])
                time.sleep(0.02)
            card = client.models.list().data[0].model_extra["breakeven"]
    finally:
        sim.stop()
    runs = sorted(finished, key=lambda q: q.arrival)
    return [b.arrival - a.finished for a, b in itertools.pairwise(runs)], card


def test_a_callers_turn_around_takes_no_simulated_time_on_the_virtual_clock():
    held, card = _gaps("virtual")
    assert card["clock"] == "virtual"
    assert len(held) == 3
    assert held == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    assert card["lateness"]["held_seconds"] >= 3 * 0.02  # the pauses, stood still
    wall, card = _gaps("wall")
    assert card["clock"] == "wall" and card["lateness"]["held_seconds"] == 0
    assert min(wall) >= 0.02 / 0.01  # 20 ms of wall time at scale 0.01: 2 simulated s
