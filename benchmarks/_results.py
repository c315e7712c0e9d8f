"""Write one benchmark's section of ``benchmarks/RESULTS.md`` without touching the others."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = (
    "# Benchmark results\n\n"
    "Each section is written by the script named in it; rerun that script to refresh it.\n"
)


def machine() -> str:
    """One line describing the machine the figures were measured on."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def benchdata_dir() -> Path:
    """``$VERACITY_BENCHDATA`` or ``../shared/benchdata`` next to the repository."""
    env = os.environ.get("VERACITY_BENCHDATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "benchdata"


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section ``name`` of RESULTS.md with ``body`` (Markdown)."""
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"<!-- BEGIN {name} -->\n## {name}\n\n_Measured {stamp} on {machine()}._\n\n"
        f"{body.strip()}\n<!-- END {name} -->\n"
    )
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->\n", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    RESULTS.write_text(text)


def md_table(headers: list[str], rows: list[list[object]]) -> str:
    """A Markdown table; floats get 4 significant digits."""

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(out)
