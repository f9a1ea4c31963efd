"""``python -m breakeven``: the same as the ``breakeven`` command."""

from breakeven.cli import main

main()
