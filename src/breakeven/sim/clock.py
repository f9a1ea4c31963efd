"""The live simulator's clock: simulated seconds read off a wall clock. Pure (the wall
clock is injected: the event loop's ``time``).

The engine itself never reads a clock (``SimEngine.now`` is the sum of its steps), so an
offline run (``sim --offline``, ``size``'s simulation, unit tests) is a discrete-event
simulation whose figures depend on nothing but its input. Only the HTTP server has to map
simulated time to the wall clock, to hand tokens to real clients when they are due. Two
mappings:

* ``wall`` (the default; ``sim --clock wall``): simulated ``t`` is due at wall
  ``origin + t * time_scale`` on a fixed timeline. A host that falls behind delivers late
  and the lateness is measured and exported, but the engine's figures stretch with it:
  callers that answer late leave the batch emptier than the model would.
* ``virtual`` (``sim --clock virtual``, the in-process test servers): the same pacing, but
  the simulated clock *stops* whenever the host is the bottleneck: while a step ends behind
  its schedule by more than ``slack_s`` (the timeline slides by the excess instead of
  accruing it; a request arriving meanwhile is dated no later than the engine's own clock)
  and while a caller
  whose request just finished has not yet sent its next one on the same connection (a
  closed-loop caller's turn-around, which a real engine would not wait for but which on a
  busy host takes longer than a simulated step). A connection that stays quiet for
  ``hold_s`` wall seconds is taken to have stopped sending. So a closed-loop run's
  simulated figures (engine TTFT, TPOT, throughput) are the same on a loaded host as on an
  idle one; wall-clock figures measured by the client still include the host's delays.
  Open-loop (rate) clients send on their own wall schedule, which a stopped clock would
  distort: use ``wall`` for those.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["CLOCKS", "SimClock"]

CLOCKS = ("wall", "virtual")


class SimClock:
    """Simulated time on a wall clock ``time`` at ``time_scale`` wall seconds per
    simulated second; ``virtual`` allows it to stop (``pause``/``resume``, ``slide``)."""

    def __init__(self, time: Callable[[], float], time_scale: float, *,
                 kind: str = "wall", hold_s: float = 0.1, slack_s: float = 0.005) -> None:
        if kind not in CLOCKS:
            raise ValueError(f"unknown clock {kind!r} (expected one of {', '.join(CLOCKS)})")
        self.time = time
        self.scale = time_scale
        self.virtual = kind == "virtual"
        self.hold_s = hold_s
        self.slack_s = slack_s
        self.origin = time()
        self.slid_s = 0.0  # wall seconds the clock stood still because the host was late
        self.held_s = 0.0  # ... and while callers were between requests
        self._paused_at: float | None = None

    @property
    def kind(self) -> str:
        return "virtual" if self.virtual else "wall"

    def now(self) -> float:
        """Simulated seconds since the start (frozen while paused)."""
        wall = self._paused_at if self._paused_at is not None else self.time()
        return (wall - self.origin) / self.scale

    def due(self, sim_t: float) -> float:
        """The wall instant at which simulated ``sim_t`` is due."""
        return self.origin + sim_t * self.scale

    def slide(self, lag: float) -> None:
        """A step ended ``lag`` wall seconds late. Up to ``slack_s`` the timeline is kept
        (the next steps catch up, as on the wall clock, so a little jitter does not stretch
        wall-clock figures); on a virtual clock, none of the time beyond it passed in the
        simulation (a wall clock keeps its timeline and stays late)."""
        excess = lag - self.slack_s
        if self.virtual and excess > 0:
            self.origin += excess
            self.slid_s += excess

    def pause(self, at: float | None = None) -> None:
        """Stand still from now, or from the wall instant ``at`` that a step ended on the
        schedule (the step whose answer the caller turns around from; the loop's timers
        may wake a little before it)."""
        if self.virtual and self._paused_at is None:
            self._paused_at = self.time() if at is None else at

    def resume(self) -> None:
        if self._paused_at is not None:
            stood = self.time() - self._paused_at
            self.origin += stood
            self.held_s += stood
            self._paused_at = None
