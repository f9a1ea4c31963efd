"""The gateway configures logging once, for every breakeven module's own logger."""

from __future__ import annotations

import logging

from breakeven.gateway import dispatch
from breakeven.gateway.server import configure_logging


def test_every_module_logs_under_breakeven_at_the_level_asked(capsys):
    root = logging.getLogger("breakeven")
    saved = (root.handlers[:], root.level, root.propagate)
    try:
        configure_logging("warning")
        assert dispatch.log.name == "breakeven.gateway.dispatch"  # one logger per module
        dispatch.log.info("not shown")
        dispatch.log.warning("circuit open for b1")
        err = capsys.readouterr().err
        assert "circuit open for b1" in err and "breakeven.gateway.dispatch" in err
        assert "not shown" not in err
        configure_logging("debug")
        configure_logging("debug")  # configuring twice does not print twice
        dispatch.log.debug("once")
        assert capsys.readouterr().err.count("once") == 1
    finally:
        root.handlers[:], root.level, root.propagate = saved
