"""Write one benchmark's section of ``benchmarks/RESULTS.md`` without touching the others."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import subprocess
import sys
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


def compile_veracity() -> str:
    """Compile Veracity's modules to bytecode, as pip does for an installed package; returns a
    sentence for RESULTS.md.

    The peers run from site-packages, compiled when pip installed them. Veracity is installed
    editable, whose modules Python compiles on first import and caches, unless
    ``PYTHONDONTWRITEBYTECODE`` is set (it is on the benchmark machine): then every process
    compiled every Veracity module again (about 40 ms), which a user's installation does not do.
    """
    import veracity

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(veracity.__file__).parent)], check=True)
    return (
        "Both sides run from compiled bytecode: the peer's site-packages were compiled by pip, "
        "Veracity's source tree by `python -m compileall` before the timed runs."
    )


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
