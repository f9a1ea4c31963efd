"""The one exception hierarchy of breakeven.

    BreakevenError
     └── InputError          bad user input: names the file, the field, the value and the fix
          ├── CatalogError   a catalog file or an id that is not in the catalog
          └── WorkloadError  a workload file that is malformed or inconsistent

Every interface translates these exactly once: the CLI prints ``str(err)`` on one line and
exits with code 2; a library user catches ``BreakevenError``.
"""

from __future__ import annotations

__all__ = ["BreakevenError", "CatalogError", "InputError", "WorkloadError"]


class BreakevenError(Exception):
    """Base of every error breakeven raises on purpose."""


class InputError(BreakevenError):
    """Input that cannot be used. ``where`` is a file (or ``--flag``), ``field`` a dotted path."""

    def __init__(self, message: str, *, where: str | None = None, field: str | None = None):
        self.message = message
        self.where = where
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        prefix = ": ".join(part for part in (self.where, self.field) if part)
        return f"{prefix}: {self.message}" if prefix else self.message


class CatalogError(InputError):
    """A catalog file is invalid, or an id names nothing in the catalog."""


class WorkloadError(InputError):
    """A workload file is malformed or inconsistent."""
