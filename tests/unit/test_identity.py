"""Pinned identity on its own: the weights digest (fingerprints and drift end to end:
integration/test_identity.py)."""

from __future__ import annotations

from breakeven.gateway.identity import weights_digest


def test_weights_digest_is_stable_and_sensitive(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for root, order in ((a, ("model.safetensors", "config.json")),
                        (b, ("config.json", "model.safetensors"))):
        root.mkdir()
        for name in order:
            (root / name).write_bytes(b"weights" if name.endswith("tensors") else b"{}")
    (b / "README.md").write_text("not part of the model")
    assert weights_digest(a)[0] == weights_digest(b)[0]
    (b / "model.safetensors").write_bytes(b"weightz")
    assert weights_digest(a)[0] != weights_digest(b)[0]
