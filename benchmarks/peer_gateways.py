"""The peer gateways the overhead benchmark runs beside breakeven, each installed by the
benchmark into a folder of its own under ``benchmarks/.peers/`` (git-ignored).

- Portkey's gateway: ``@portkey-ai/gateway`` from npm (``npm install --prefix``), run with
  node, headless, in front of the upstream as a custom OpenAI host. Two things are added
  by a ``--require`` preload (``listen.cjs``, written here): its server listens on every
  interface and has no option for it, so ``listen()`` is given 127.0.0.1; and on Node its
  streamed answers fail with ``TypeError: immutable`` (it appends its ``x-portkey-*``
  headers to the upstream's fetch Response, whose headers the fetch spec freezes;
  Portkey-AI/gateway issues #1389 and #1550), so a header write that the guard refuses
  is skipped, as its proposed fix (pull request #1390) does: the stream itself is
  unchanged.
- LiteLLM's proxy: ``litellm[proxy]`` from PyPI in a virtualenv of its own, one worker, no
  database, the upstream as an ``openai/`` model.

Each ``*_command`` returns the argv that starts the peer, or None after printing why it
is skipped (no npm or node; a failed install).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["PEERS", "litellm_command", "litellm_config", "litellm_version",
           "portkey_command", "portkey_headers", "portkey_version"]

PEERS = Path(__file__).resolve().parent / ".peers"
PORTKEY = "@portkey-ai/gateway"
_PRELOAD = """\
// written by benchmarks/peer_gateways.py: what the overhead benchmark adds to Portkey's gateway
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  // listen(port[, host][, backlog][, callback]): no host given means every interface
  if (typeof args[0] === "number" && typeof args[1] !== "string") {
    if (args.length >= 2 && args[1] === undefined) args[1] = "127.0.0.1";
    else args.splice(1, 0, "127.0.0.1");
  }
  return listen.apply(this, args);
};
for (const name of ["append", "set", "delete"]) {
  const real = Headers.prototype[name];
  Headers.prototype[name] = function (...args) {
    try {
      return real.apply(this, args);
    } catch (error) {
      if (error instanceof TypeError && error.message === "immutable") return undefined;
      throw error;
    }
  };
}
"""


def _skip(name: str, why: str) -> None:
    print(f"{name}: skipped ({why})", file=sys.stderr, flush=True)


def portkey_command(port: int, version: str) -> list[str] | None:
    folder = PEERS / "portkey"
    start = folder / "node_modules" / PORTKEY / "build" / "start-server.js"
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        _skip("Portkey", "node is not installed")
        return None
    if not start.exists() or portkey_version() != version:
        if npm is None:
            _skip("Portkey", "npm is not installed")
            return None
        print(f"installing {PORTKEY}@{version} into {folder} ...", file=sys.stderr, flush=True)
        done = subprocess.run([npm, "install", "--prefix", str(folder), "--no-audit",
                               "--no-fund", f"{PORTKEY}@{version}"], capture_output=True,
                              text=True)
        if done.returncode != 0 or not start.exists():
            _skip("Portkey", f"npm install failed: {done.stderr.strip()[-500:]}")
            return None
    preload = folder / "listen.cjs"
    preload.write_text(_PRELOAD)
    return [node, "--require", str(preload), str(start), f"--port={port}", "--headless"]


def portkey_version() -> str | None:
    found = PEERS / "portkey" / "node_modules" / PORTKEY / "package.json"
    return str(json.loads(found.read_text())["version"]) if found.exists() else None


def portkey_headers(upstream: str) -> dict[str, str]:
    """What a client sends Portkey to reach an OpenAI-compatible host of its own."""
    return {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream,
            "Authorization": "Bearer none"}


def litellm_command(config: Path, port: int, given: str | None) -> list[str] | None:
    folder = PEERS / "litellm"
    exe = Path(given) if given else folder / "bin" / "litellm"
    if not exe.exists():
        if given:
            _skip("LiteLLM", f"{given} does not exist")
            return None
        print(f"installing litellm[proxy] into {folder} ...", file=sys.stderr, flush=True)
        for step in ([sys.executable, "-m", "venv", str(folder)],
                     [str(folder / "bin" / "pip"), "install", "-q", "litellm[proxy]"]):
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode != 0:
                _skip("LiteLLM", f"{step[0]} failed: {done.stderr.strip()[-500:]}")
                return None
    return [str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
            "--num_workers", "1"]


def litellm_version(command: list[str]) -> str:
    python = Path(command[0]).with_name("python")
    done = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                           "print(m.version('litellm'))"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def litellm_config(path: Path, upstream: str, key: str) -> Path:
    path.write_text(f"""
model_list:
  - model_name: zero
    litellm_params: {{model: openai/zero, api_base: "{upstream}", api_key: none}}
general_settings: {{master_key: "{key}"}}
litellm_settings: {{drop_params: true, telemetry: false}}
""")
    return path
