"""The report: is self-hosting still paying off? Pure passes over the ledger's hourly
rollup (``build``, composing ``window``, ``pools``, ``tally``, ``figures`` and ``verdict``),
the workload observed in it (``observed``); ``run`` does the I/O."""
