"""The tamper-evident audit chain over the ledger: hashing, verification, signed checkpoints."""
