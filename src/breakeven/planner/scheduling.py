"""An engine's scheduler settings (SGLang's receive interval, TensorRT-LLM's batch waits
and attention-DP balance) as one value a deployment carries. Pure."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Scheduling"]


@dataclass(frozen=True)
class Scheduling:
    """Scheduler settings that hold new requests back from the steps (the defaults: none
    do); only the simulation models them (``breakeven.sim.engine``)."""

    recv_interval: int = 1  # SGLang --scheduler-recv-interval: decode steps between looks
    batch_wait_iters: int = 0  # TensorRT-LLM batch_wait_timeout_iters
    batch_wait_tokens_ratio: float = 0.0  # TensorRT-LLM batch_wait_max_tokens_ratio
    adp_balance_iters: int = 0  # TensorRT-LLM attention_dp_config timeout_iters (balance on)

    @property
    def options(self) -> tuple[str, ...]:
        """The engine options these settings use (``Engine.scheduler_options``)."""
        used = (("recv_interval", self.recv_interval > 1),
                ("batch_wait", bool(self.batch_wait_iters or self.batch_wait_tokens_ratio)),
                ("adp_balance", self.adp_balance_iters > 0))
        return tuple(name for name, on in used if on)

    def describe(self) -> str:
        """The settings that hold requests back, as ", ..." clauses of a settings line."""
        parts = []
        if self.recv_interval > 1:
            parts.append(f"new requests taken in every {self.recv_interval} decode steps")
        if self.batch_wait_iters or self.batch_wait_tokens_ratio:
            parts.append(f"prompts held up to {self.batch_wait_iters} steps for "
                         f"{self.batch_wait_tokens_ratio:.0%} of the token budget")
        if self.adp_balance_iters:
            parts.append(f"prompts held up to {self.adp_balance_iters} steps until every "
                         "attention-DP rank has one")
        return "".join(f", {p}" for p in parts)
