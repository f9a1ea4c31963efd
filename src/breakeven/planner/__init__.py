"""The planner: pure functions from a workload and a catalog to a plan (no I/O).

``search.plan()`` is the entry point (``candidates`` what passes the gates and fits);
``types`` holds the value types; ``workload`` the validated input; ``sizing`` the engine
model (``replica`` its memory, ``roofline`` its speed); ``economics`` costs and break-even;
``decide`` the gates, verdict and warnings; ``calibration`` and ``overrides`` what a user's
measurements and files change; ``deploy`` the launch lines; ``emit_gateway`` the gateway
config a plan implies. The public names are re-exported by ``breakeven`` itself.
"""
