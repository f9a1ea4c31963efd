"""The catalog: GPUs and their rental offers, open models, hosted models, engines, quality.

This is the package's face; the look-ups live in ``_catalog`` and the row types in
``schema``. ``breakeven.loaders.load_catalog`` builds one from the packaged YAML files.
"""

from breakeven.catalog._catalog import Catalog

__all__ = ["Catalog"]
