"""What the tests share, and nothing else: test modules import from here (and use the
fixtures in ``tests/conftest.py``), never from one another.

- ``paths``: the repository's root, its examples, the planner's fixed "today".
- ``configs``: client keys and their hashes, and the gateway configs tests build.
- ``servers``: the simulator and the gateway in this process (``InProcessSim``,
  ``InProcessGateway``: fast, for integration tests) or as real processes (``SimProcess``,
  ``GatewayProcess``: for system tests that kill, signal or read a process), and the
  session's own PostgreSQL server (``PostgresServer``, behind the ``postgres_server``
  fixture).
- ``upstreams``: small fake upstreams (faulty OpenAI, Anthropic wire format) in a thread.
- ``responses_upstreams``: a recording chat upstream and a backend serving the Responses
  API itself, for the ``/v1/responses`` tests.
- ``ledgers``: reading a ledger back; traffic through a gateway for the report tests.
- ``batches``: the Batch API helpers (input lines, polling, a gateway with two sims).
- ``otlp``: an OTLP/HTTP receiver (``Collector``) that decodes what a gateway exports.
"""
