"""``veracity drift`` end to end: file formats, JSON and HTML outputs, bad input exits 2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from veracity.cli import app, main


def _rows(seed: int, n: int, shift: float) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    regions = ["north", "south", "east"] + (["west"] if shift else [])
    return {
        "age": np.round(rng.normal(40 + 10 * shift, 10, n), 1).tolist(),
        "income": np.round(rng.normal(50, 5, n), 2).tolist(),
        "region": [str(v) for v in rng.choice(regions, n)],
    }


def _write(path: Path, cols: dict[str, list]) -> Path:
    names = list(cols)
    n = len(cols[names[0]])
    if path.suffix == ".csv":
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(names)
            w.writerows([[cols[c][i] for c in names] for i in range(n)])
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({c: cols[c][i] for c in names}) + "\n" for i in range(n)))
    elif path.suffix == ".parquet":
        pq.write_table(pa.table(cols), path)
    return path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_drift_detects_shift_in_every_format(tmp_path: Path, suffix: str) -> None:
    train = _write(tmp_path / f"train{suffix}", _rows(0, 400, 0.0))
    ops = _write(tmp_path / f"ops{suffix}", _rows(1, 400, 0.5))
    code, out = _run("drift", str(train), str(ops), "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["drift"] is True
    assert set(report["drifted_features"]) == {"age", "region"}
    assert report["slices"][0]["description"] == "region = west"
    assert {f["name"]: f["test"] for f in report["per_feature"]} == {"age": "ks", "income": "ks", "region": "chi2"}


def test_no_drift_text_summary_html_report_and_features(tmp_path: Path) -> None:
    train = _write(tmp_path / "train.csv", _rows(0, 300, 0.0))
    ops = _write(tmp_path / "ops.csv", _rows(1, 300, 0.0))
    html = tmp_path / "report.html"
    code, out = _run("drift", str(train), str(ops), "--features", "income,age", "--report", str(html))
    assert code == 0, out
    assert out.startswith("no drift: p = ")
    assert "income" in out and "region" not in out
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<script" not in page


def test_npy_arrays_and_fail_on_drift(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.normal(size=(300, 3)))
    np.save(tmp_path / "b.npy", rng.normal(size=(300, 3)) * [1.0, 1.0, 2.0])
    code, out = _run("drift", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--fail-on-drift", "--clusters", "0")
    assert code == 1
    assert "x2" in out and out.startswith("DRIFT")


def _main_exit(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0), capsys.readouterr().err


def test_bad_input_exits_2_naming_file_and_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = _write(tmp_path / "train.csv", _rows(0, 50, 0.0))
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("age,income,region\n1,2,north\n3,4\n")
    code, err = _main_exit(["drift", str(train), str(ragged)], capsys)
    assert code == 2 and "ragged.csv row 2" in err

    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"age": 1, "income": 2, "region": "x"}\n{"age": [1]}\n')
    code, err = _main_exit(["drift", str(train), str(bad_json)], capsys)
    assert code == 2 and "bad.jsonl row 2" in err and "'age'" in err

    other = _write(tmp_path / "other.csv", {"age": [1.0, 2.0], "height": [3.0, 4.0]})
    code, err = _main_exit(["drift", str(train), str(other)], capsys)
    assert code == 2 and "same columns" in err and "height" in err

    code, err = _main_exit(["drift", str(train), str(train), "--features", "age,zzz"], capsys)
    assert code == 2 and "no column 'zzz'" in err

    code, err = _main_exit(["drift", str(train), str(tmp_path / "missing.csv")], capsys)
    assert code == 2 and "missing.csv: no such file" in err

    code, err = _main_exit(["drift", str(train), str(train), "--method", "magic"], capsys)
    assert code == 2 and "method" in err

    code, err = _main_exit(["drift", str(train), str(train), "--report", str(tmp_path / "nope" / "r.html")], capsys)
    assert code == 2 and "does not exist" in err
