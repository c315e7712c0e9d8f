"""``veracity aggregate`` / ``veracity agreement``: CSV, Parquet, JSONL in; exit code 2 on bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from veracity.cli import app, main

DATA = Path(__file__).resolve().parents[1] / "data" / "crowd_bluebirds"


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def exit_code(*args: str) -> int:
    """Exit code of ``veracity ...`` through the real entry point (VeracityError -> 2)."""
    with pytest.raises(SystemExit) as info:
        main([*args])
    return int(info.value.code or 0)


def write_answers(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text("worker,task,label\n" + "".join(f"{w},{t},{lab}\n" for w, t, lab in rows))
    return path


def test_aggregate_csv_to_csv_with_workers_and_gold(tmp_path: Path) -> None:
    out, wout = tmp_path / "labels.csv", tmp_path / "workers.csv"
    res = run(
        "aggregate",
        str(DATA / "answers.csv"),
        "--method",
        "ds",
        "--out",
        str(out),
        "--workers-out",
        str(wout),
        "--gold",
        str(DATA / "gold.csv"),
    )
    assert res.exit_code == 0, res.output
    rows = read(out)
    assert list(rows[0]) == ["task", "label", "confidence"]
    gold = {r["task"]: r["label"] for r in read(DATA / "gold.csv")}
    assert len(rows) == 108
    assert all(r["label"] == gold[r["task"]] for r in rows)  # gold is kept
    workers = read(wout)
    assert list(workers[0]) == ["worker", "accuracy", "n_answers"]
    assert len(workers) == 39
    assert sum(int(w["n_answers"]) for w in workers) == 4212


def test_aggregate_accuracy_and_json_summary(tmp_path: Path) -> None:
    out = tmp_path / "labels.csv"
    res = run("aggregate", str(DATA / "answers.csv"), "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["tasks"] == 108 and summary["answers"] == 4212
    gold = {r["task"]: r["label"] for r in read(DATA / "gold.csv")}
    rows = read(out)
    acc = np.mean([r["label"] == gold[r["task"]] for r in rows])
    assert acc >= 0.87
    assert all(0.0 <= float(r["confidence"]) <= 1.0 for r in rows)


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_aggregate_reads_parquet_and_jsonl(tmp_path: Path, suffix: str) -> None:
    rows = [("w1", "t1", "cat"), ("w2", "t1", "cat"), ("w3", "t1", "dog"), ("w1", "t2", "dog")]
    src = tmp_path / f"answers{suffix}"
    if suffix == ".parquet":
        pq.write_table(
            pa.table(
                {
                    "worker": [r[0] for r in rows],
                    "task": [r[1] for r in rows],
                    "label": [r[2] for r in rows],
                    "extra": [1, 2, 3, 4],
                }
            ),
            src,
        )
    else:
        src.write_text("".join(json.dumps({"worker": w, "task": t, "label": lab}) + "\n" for w, t, lab in rows))
    out = tmp_path / "labels.csv"
    res = run("aggregate", str(src), "--method", "mv", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert {r["task"]: r["label"] for r in read(out)} == {"t1": "cat", "t2": "dog"}


def test_integer_labels_round_trip_and_tie_break(tmp_path: Path) -> None:
    src = write_answers(tmp_path / "a.csv", [("a", "t", "10"), ("b", "t", "9")])
    out = tmp_path / "o.csv"
    assert run("aggregate", str(src), "--method", "mv", "--out", str(out)).exit_code == 0
    assert read(out) == [{"task": "t", "label": "9", "confidence": "0.5"}]


@pytest.mark.parametrize(
    "content,message",
    [
        ("a,b\n1,2\n", "missing field 'worker', 'task', 'label'"),
        ("", "file is empty"),
        ("worker,task,label\n", "has a header but no answers"),
        ("worker,task,label\nw,t,x\nw,t,\n", "line 3: field 'label' is empty"),
    ],
)
def test_bad_input_exits_2_naming_file_and_row(tmp_path: Path, content: str, message: str, capsys) -> None:
    src = tmp_path / "bad.csv"
    src.write_text(content)
    assert exit_code("aggregate", str(src), "--out", str(tmp_path / "o.csv")) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and message in err.replace("\n", "")


def test_unreadable_encoding_exits_2(tmp_path: Path, capsys) -> None:
    src = tmp_path / "latin1.csv"
    src.write_bytes("worker,task,label\nw,t,caf\xe9\n".encode("latin-1"))
    assert exit_code("aggregate", str(src), "--out", str(tmp_path / "o.csv")) == 2
    assert "line 2" in capsys.readouterr().err


def test_missing_file_and_bad_method_exit_2(tmp_path: Path) -> None:
    assert exit_code("aggregate", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.csv")) == 2
    src = write_answers(tmp_path / "a.csv", [("a", "t", "x")])
    assert exit_code("aggregate", str(src), "--method", "best", "--out", str(tmp_path / "o.csv")) == 2


def test_gold_label_unknown_exits_2(tmp_path: Path, capsys) -> None:
    src = write_answers(tmp_path / "a.csv", [("a", "t", "x")])
    gold = tmp_path / "g.csv"
    gold.write_text("task,label\nt,zzz\n")
    assert exit_code("aggregate", str(src), "--gold", str(gold), "--out", str(tmp_path / "o.csv")) == 2
    assert "g.csv" in capsys.readouterr().err


def test_agreement_text_and_json(tmp_path: Path) -> None:
    rows = [("a", str(i), str(i % 3)) for i in range(30)] + [("b", str(i), str(i % 3)) for i in range(30)]
    src = write_answers(tmp_path / "a.csv", rows)
    for metric in ("krippendorff", "fleiss", "cohen", "percent"):
        res = run("agreement", str(src), "--metric", metric, "--json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["value"] == pytest.approx(1.0)
    res = run("agreement", str(src), "--metric", "krippendorff", "--level", "interval", "--ci", "0.9", "--n-boot", "50")
    assert res.exit_code == 0 and "krippendorff (interval): 1.0000" in res.output


def test_agreement_bad_level_exits_2(tmp_path: Path) -> None:
    src = write_answers(tmp_path / "a.csv", [("a", "t", "x"), ("b", "t", "y")])
    assert exit_code("agreement", str(src), "--level", "cardinal") == 2
    assert exit_code("agreement", str(src), "--metric", "krippendorff", "--level", "interval") == 2


def test_whole_process_exit_code(tmp_path: Path) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("a,b\n1,2\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from veracity.cli import main; main()",
            "aggregate",
            str(src),
            "--out",
            str(tmp_path / "o.csv"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "bad.csv" in proc.stderr and "Traceback" not in proc.stderr
