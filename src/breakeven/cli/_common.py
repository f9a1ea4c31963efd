"""Options and helpers shared by the commands."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

catalog_option = click.option(
    "--catalog", "catalog_dir", type=click.Path(file_okay=False), default=None,
    help="Directory with your own copy of the catalog YAML files.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
