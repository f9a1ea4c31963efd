"""Reading the launch lines the planner writes."""

from __future__ import annotations

from typing import Any

import yaml

from breakeven.planner.deploy import TRT_OPTIONS


def trt_options(line: str) -> dict[str, Any]:
    """The LLM-API options file a trtllm-serve line writes before it starts, parsed as
    YAML (empty when the line writes none)."""
    if not line.startswith("printf '"):
        assert "--extra_llm_api_options" not in line
        return {}
    body, rest = line[len("printf '"):].split("' > ", 1)
    assert rest.startswith(f"{TRT_OPTIONS} && trtllm-serve ")
    flags = rest.split()
    assert flags[flags.index("--extra_llm_api_options") + 1] == TRT_OPTIONS
    parsed = yaml.safe_load(body.replace("\\n", "\n"))
    assert isinstance(parsed, dict)
    return parsed
