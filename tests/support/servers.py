"""The simulator and the gateway, in this process or as real processes.

In-process (``InProcessSim``, ``InProcessGateway``): the server's aiohttp app on an event
loop of its own in a background thread, on a free port of 127.0.0.1. Starting one costs
milliseconds instead of the second of CPU a new Python process takes; integration tests use
these. As processes (``SimProcess``, ``GatewayProcess``): ``breakeven sim`` and ``breakeven
gateway`` exactly as an operator starts them; system tests use these where the process is
the point (SIGKILL, SIGTERM, its memory, its start-up, its stderr).

Both kinds have ``.url`` (the /v1 base), ``.base`` (without /v1) and ``.stop()``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from breakeven.event_loop import event_loop

__all__ = [
    "GatewayProcess",
    "InProcessGateway",
    "InProcessSim",
    "PostgresServer",
    "SimProcess",
    "bench_sim",
    "free_port",
    "two_sims",
]


def free_port() -> int:
    """A port nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- in this process ----------------------------------------------------------------------

class _InThread:
    """A server on an event loop of its own (uvloop, as the real servers) in a daemon thread.

    Subclasses give ``_start`` (build and listen, return the /v1 URL) and may give
    ``_cleanup``; the loop is an ``asyncio.Runner``'s, as in ``serve``, so whatever is left
    at the end (tasks, async generators, the default executor) is shut down the same way.
    """

    what = "server"

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name=f"in-process {self.what}",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError(f"{self.what} did not start within 60 s")
        if self._error is not None:
            self._thread.join(10)
            raise RuntimeError(f"{self.what} did not start: {self._error!r}") from self._error
        self.base = self.url.removesuffix("/v1")

    def _run(self) -> None:
        with asyncio.Runner(loop_factory=event_loop) as runner:
            runner.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            self.url = await self._start()
        except BaseException as exc:  # handed to the constructor, raised there
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop_event.wait()
        await self._cleanup()

    async def _start(self) -> str:
        raise NotImplementedError

    async def _cleanup(self) -> None:
        pass

    def call(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` on the server's loop (from the test's thread)."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(fn, *args)

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The server stops dead while the block runs, as a process does under SIGSTOP:
        its loop is blocked, so connections queue in the socket's backlog and nothing is
        read, answered or timed out; at the end it carries on where it was."""
        blocked, release = threading.Event(), threading.Event()

        def block() -> None:
            blocked.set()
            release.wait(120)

        self.call(block)
        assert blocked.wait(10), f"{self.what} did not freeze"
        try:
            yield
        finally:
            release.set()

    def stop(self) -> None:
        if self._thread.is_alive() and self._stop_event is not None:
            self.call(self._stop_event.set)
        self._thread.join(45)
        if self._thread.is_alive():
            raise RuntimeError(f"{self.what} did not stop within 45 s")


class InProcessSim(_InThread):
    """``breakeven sim --port 0 *args`` in this process. ``env`` stands for the
    environment ``--api-key-env`` reads (this process's is not looked at); ``.server`` is
    the ``SimServer`` (its engine, counters and histograms, in simulated time). A test that
    reads simulated figures from a closed-loop run passes ``--clock virtual``: then they
    do not depend on how busy the machine is (``breakeven.sim.clock``)."""

    what = "sim"

    def __init__(self, *args: str, env: Mapping[str, str] | None = None) -> None:
        from breakeven.cli.sim_cmd import _deployment, command
        from breakeven.sim.engine import engine_config

        with command.make_context("sim", ["--port", "0", *args]) as ctx:
            p = ctx.params
        if p["offline"]:
            raise ValueError("InProcessSim serves; run --offline through run_cli")
        dep = _deployment(p["catalog_dir"], p["model"], p["gpu"], p["gpus"], p["quant"],
                          p["kv_dtype"], p["engine"], p["layout"],
                          gpu_memory_utilization=p["gpu_memory_utilization"],
                          engine_version=p["engine_version"])
        self._config = engine_config(dep, p["max_model_len"], p["max_num_seqs"],
                                     p["scheduling_policy"], p["prefix_caching"])
        self._dep, self._params = dep, p
        name = p["api_key_env"]
        self._api_key = (env or {})[name] if name else None
        super().__init__()

    async def _start(self) -> str:
        from breakeven.sim.server import start

        p = self._params
        self.server, self._runner, url = await start(
            self._dep, self._config, served_name=p["served_model_name"] or p["model"],
            host=p["host"], port=p["port"], time_scale=p["time_scale"], seed=p["seed"],
            api_key=self._api_key, variant=p["variant"], clock=p["clock"],
            prompt_tokens_details=p["prompt_tokens_details"])
        return url

    async def _cleanup(self) -> None:
        await self._runner.cleanup()

    def watch(self) -> list[Any]:
        """From now on, every sequence the engine finishes is appended to the list returned
        (``breakeven.sim.engine.Sequence``: ``first_token``, ``finished``,
        ``output_tokens``...), its times on the engine's own clock: simulated seconds,
        whatever the wall clock of a busy machine did meanwhile. A later call starts a new
        list."""
        engine = self.server.engine
        if getattr(self, "_watched", None) is None:
            step = engine.step

            def watched() -> Any:
                done = step()
                if done is not None:
                    self._watched.extend(done.finished)
                return done

            engine.step = watched  # the engine task looks it up at every step
        self._watched: list[Any] = []
        return self._watched


class _LogRecords(logging.Handler):
    """Every log record emitted in this process while a gateway runs, formatted."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class InProcessGateway(_InThread):
    """``breakeven gateway --config FILE --port 0`` built in this process from
    ``config`` (written to ``directory/NAME.yaml``, ``.path``).

    Built with ``breakeven.gateway.server.Server``, as ``breakeven gateway`` builds it
    (the config's boundary problems refuse the start, as the command does).

    ``env`` is the environment the gateway sees: the audit signing key, upstream API keys
    (``api_key_env``). The gateway reads upstream keys from ``os.environ`` when it sends a
    request, so they are set there while it runs and removed by ``stop()`` (nothing leaks
    into the next test). ``.logs``: what it logged while it ran (where the process would
    write to stderr).
    """

    what = "gateway"

    def __init__(self, config: str, directory: Path, env: Mapping[str, str] | None = None,
                 name: str = "gateway") -> None:
        self.path = directory / f"{name}.yaml"
        self.path.write_text(config)
        self._env = pytest.MonkeyPatch()
        for key, value in (env or {}).items():
            self._env.setenv(key, value)
        self._records = _LogRecords()
        logging.getLogger().addHandler(self._records)
        try:
            super().__init__()
        except BaseException:
            self._undo()
            raise

    @property
    def logs(self) -> str:
        return "\n".join(self._records.lines)

    async def _start(self) -> str:
        from breakeven.gateway.boundary import boundary
        from breakeven.gateway.server import Server
        from breakeven.loaders import load_gateway_config

        cfg = load_gateway_config(self.path).model_copy(update={"port": 0})
        found = boundary(cfg, os.environ)  # as `breakeven gateway` refuses to start
        if found.problems:
            raise RuntimeError("; ".join(found.problems))
        self.server = Server(cfg, os.environ)
        return await self.server.start()

    async def _cleanup(self) -> None:
        await self.server.stop()  # stops accepting, lets in-flight requests finish

    def _undo(self) -> None:
        logging.getLogger().removeHandler(self._records)
        self._env.undo()

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self._undo()


# -- as processes -------------------------------------------------------------------------

class _Server:
    """A ``breakeven`` server subprocess that prints 'listening on URL' once it serves."""

    def __init__(self, args: list[str], env: Mapping[str, str] | None, what: str) -> None:
        self.errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from breakeven.cli import main; main()", *args],
            stdout=subprocess.PIPE, stderr=self.errors, text=True,
            env={**os.environ, **(env or {})})
        assert self.proc.stdout is not None
        lines = [self.proc.stdout.readline()]
        if what == "sim":
            self.banner = lines[0]
            lines.append(self.proc.stdout.readline())
        if not lines[-1].startswith("listening on "):
            errors = self.stderr
            self.stop()
            raise RuntimeError(f"{what} did not start: {''.join(lines)}{errors}")
        self.url = lines[-1].split()[-1]
        self.base = self.url.removesuffix("/v1")

    @property
    def stderr(self) -> str:
        """What the process wrote to stderr so far (all of it, once stopped)."""
        if self.errors.closed:
            return self._stderr
        self.errors.seek(0)
        return self.errors.read()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        if not self.errors.closed:
            self._stderr = self.stderr
            self.errors.close()


class SimProcess(_Server):
    """A ``breakeven sim`` subprocess on a free port of 127.0.0.1."""

    def __init__(self, *args: str, env: Mapping[str, str] | None = None) -> None:
        super().__init__(["sim", "--port", "0", *args], env, "sim")


class GatewayProcess(_Server):
    """``breakeven gateway`` on a free port with the config text given."""

    def __init__(self, config: str, directory: Path, env: Mapping[str, str] | None = None,
                 name: str = "gateway") -> None:
        self.path = directory / f"{name}.yaml"
        self.path.write_text(config)
        super().__init__(["gateway", "--config", str(self.path), "--port", "0"], env,
                         "gateway")


class PostgresServer:
    """A PostgreSQL server of its own in a temporary directory (``initdb`` + ``pg_ctl``):
    its URL, and a restart under whoever uses it. ``start()`` is None where PostgreSQL is
    not installed."""

    def __init__(self, url: str, ctl: list[str], root: Path) -> None:
        self.url = url
        self._ctl = ctl
        self._root = root

    @classmethod
    def start(cls) -> PostgresServer | None:
        import glob
        import shutil

        bindir = next((os.path.dirname(p) for p in
                       [shutil.which("initdb") or "", *sorted(glob.glob(
                           "/usr/lib/postgresql/*/bin/initdb"))] if p and os.path.exists(p)),
                      None)
        if bindir is None:
            return None
        root = Path(tempfile.mkdtemp(prefix="breakeven-pg-"))  # pytest's tmp is 0700
        data = root / "data"
        port = free_port()
        as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(root, "postgres")
            as_user = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*as_user, f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U",
                        "postgres", "--no-sync"], check=True, capture_output=True)
        ctl = [*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-l", str(root / "log")]
        subprocess.run([*ctl, "-w", "-o",
                        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
                        "start"], check=True, capture_output=True)
        return cls(f"postgresql://postgres@127.0.0.1:{port}/postgres", ctl, root)

    def restart(self) -> None:
        subprocess.run([*self._ctl, "-m", "fast", "-w", "restart"], check=True,
                       capture_output=True)

    def stop(self) -> None:
        import shutil

        subprocess.run([*self._ctl, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(self._root, ignore_errors=True)


def two_sims(time_scale: str) -> Iterator[tuple[InProcessSim, InProcessSim]]:
    """Two 8B-on-H100 sims (seeds 1 and 2: a self-hosted replica and a hosted stand-in) for
    a fixture to yield; stopped when it resumes."""
    first = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                         "--time-scale", time_scale, "--seed", "1")
    second = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                          "--time-scale", time_scale, "--seed", "2")
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def bench_sim(run_cli: Any, out: Path, sim_args: tuple[str, ...], *bench_args: str) -> Any:
    """``breakeven bench --json OUT`` against an ``InProcessSim(*sim_args)`` serving the
    sim's ``--model``, the sim stopped after; the result as parsed."""
    import json

    model = sim_args[sim_args.index("--model") + 1]
    sim = InProcessSim(*sim_args)
    try:
        result = run_cli("bench", "--url", sim.url, "--model", model, "--quiet", *bench_args,
                         "--json", str(out))
        assert result.returncode == 0, result.stderr
    finally:
        sim.stop()
    return json.loads(out.read_text())
