"""Regenerates config.toml and the README's configuration table from the option declarations.

    python tools/gen_config.py      (tests/test_docs.py fails when either is out of date)
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

from analytics.config import options

ROOT = Path(__file__).resolve().parent.parent
HEADER = """# Configuration of the analytics server. Every option is listed with its default value.
# Each can also be set by an environment variable, shown under it, which wins over this file.
# The server reads ./config.toml, or the file given with `analytics --config PATH` or ANALYTICS_CONFIG.
# An invalid value stops the server at start with a message naming the option and the fix."""


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return repr(value)


def config_toml() -> str:
    lines = [HEADER]
    section = None
    for o in options():
        if o.section != section:
            lines += ["", f"[{o.section}]"]
            section = o.section
        else:
            lines.append("")
        lines += ["# " + line for line in textwrap.wrap(o.doc, 108, break_on_hyphens=False)]
        lines += [f"# Environment: {o.env}", f"{o.key} = {toml_value(o.default)}"]
    return "\n".join(lines) + "\n"


def readme_table() -> str:
    rows = ["| option | environment variable | default | meaning |", "|---|---|---|---|"]
    rows += [f"| `{o.section}.{o.key}` | `{o.env}` | `{toml_value(o.default)}` | {o.doc} |" for o in options()]
    return "\n".join(rows) + "\n"


def readme(text: str) -> str:
    return re.sub(r"\| option \| environment variable .*?\n(?!\|)", readme_table(), text, count=1, flags=re.S)


if __name__ == "__main__":
    (ROOT / "config.toml").write_text(config_toml())
    path = ROOT / "README.md"
    path.write_text(readme(path.read_text()))
