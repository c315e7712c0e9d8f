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


def _numbers(path: Path, values: list[object]) -> Path:
    path.write_text("a\n" + "".join(f"{v}\n" for v in values), encoding="utf-8")
    return path


def test_text_cell_in_a_numeric_column_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    train = _numbers(tmp_path / "train.csv", rng.normal(size=200).round(4).tolist())
    shifted: list[object] = (rng.normal(size=200) + 3).round(4).tolist()
    shifted[50] = "oops"
    ops = _numbers(tmp_path / "ops.csv", shifted)
    code, err = _main_exit(["drift", str(train), str(ops)], capsys)
    assert code == 2
    assert "ops.csv row 51 (line 52), column 'a': 'oops' is not a number" in err
    assert "--categorical a" in err and "Traceback" not in err
    ops_jsonl = tmp_path / "ops.jsonl"
    ops_jsonl.write_text("".join(json.dumps({"a": v}) + "\n" + ("\n" if i == 0 else "") for i, v in enumerate(shifted)))
    code, err = _main_exit(["drift", str(train), str(ops_jsonl)], capsys)
    assert code == 2 and "ops.jsonl row 51 (line 52), column 'a': 'oops' is not a number" in err
    # numbers stored as text in one file, numbers in the other
    pq.write_table(pa.table({"a": [str(v) for v in shifted[:10]]}), tmp_path / "text.parquet")
    code, err = _main_exit(["drift", str(train), str(tmp_path / "text.parquet")], capsys)
    assert code == 2 and "text.parquet: column 'a' holds text" in err and "numbers in" in err
    # text in both files but numbers except for one cell
    both = _numbers(tmp_path / "both.csv", ["x", *shifted[:49]])
    code, err = _main_exit(["drift", str(both), str(ops)], capsys)
    assert code == 2 and "both.csv row 1 (line 2), column 'a': 'x' is not a number, but 99% of" in err
    # meant as categories: the option says so
    code, out = _run("drift", str(train), str(ops), "--categorical", "a", "--clusters", "0")
    assert code == 0, out


def test_infinite_values_and_empty_columns_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=200).round(4).tolist()
    train = _numbers(tmp_path / "train.csv", values)
    ops = _numbers(tmp_path / "ops.csv", ["1.5"] * 50 + ["inf"] * 150)
    code, err = _main_exit(["drift", str(train), str(ops)], capsys)
    assert code == 2 and "ops.csv row 51 (line 52), column 'a': infinite value inf" in err
    np.save(tmp_path / "train.npy", rng.normal(size=(60, 2)))
    np.save(tmp_path / "nan.npy", np.full((60, 2), np.nan))
    code, err = _main_exit(["drift", str(tmp_path / "train.npy"), str(tmp_path / "nan.npy")], capsys)
    assert code == 2 and "nan.npy: column 'x0' has no values (all 60 missing)" in err
    empty = _numbers(tmp_path / "empty.csv", ["nan", "NA", "null"])
    code, err = _main_exit(["drift", str(train), str(empty)], capsys)
    assert code == 2 and "empty.csv: column 'a' has no values (all 3 missing)" in err


def test_options_are_checked_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = _write(tmp_path / "train.csv", _rows(0, 50, 0.0))
    code, err = _main_exit(["drift", str(train), str(train), "--categorical", "region,zz"], capsys)
    assert code == 2 and "--categorical: no column 'zz' (has age, income, region)" in err
    missing = str(tmp_path / "missing.csv")  # the option errors come before the files are read
    code, err = _main_exit(["drift", str(train), missing, "--clusters", "-1"], capsys)
    assert code == 2 and "--clusters must be >= 0" in err
    code, err = _main_exit(["drift", str(train), missing, "--report", str(tmp_path)], capsys)
    assert code == 2 and "is a directory" in err and "Traceback" not in err
    code, err = _main_exit(["drift", str(train), missing, "--report", str(train / "r.html")], capsys)
    assert code == 2 and "is not a folder" in err
    if Path("/proc/self").is_dir():  # a folder nobody can create files in, even root
        code, err = _main_exit(["drift", str(train), missing, "--report", "/proc/r.html"], capsys)
        assert code == 2 and "cannot write in folder /proc" in err
    assert list(tmp_path.glob(".veracity-*")) == []


def test_encoding_bom_and_long_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = _write(tmp_path / "train.csv", _rows(0, 50, 0.0))
    rows = train.read_text().splitlines()
    latin = tmp_path / "latin.csv"
    latin.write_bytes("\n".join([*rows[:5], "40.0,50.0,caf\xe9", *rows[5:]]).encode("latin-1") + b"\n")
    code, err = _main_exit(["drift", str(train), str(latin)], capsys)
    assert code == 2 and "latin.csv line 6: not valid UTF-8 text (column 'region')" in err
    # a 3 MB text field is read (the report leaves the column out: a 3 MB category is slow to count)
    long = tmp_path / "long.csv"
    long.write_text("\n".join([*rows[:3], "40.0,50.0," + "z" * 3_000_000, *rows[3:]]) + "\n")
    code, out = _run("drift", str(train), str(long), "--features", "age,income", "--clusters", "0", "--json")
    assert code == 0, out[:300]
    assert json.loads(out)["n_current"] == 51
    # and a ragged row after it is found by the row-by-row reader, which has no field size limit
    long.write_text(long.read_text() + "1.0,2.0\n")
    code, err = _main_exit(["drift", str(train), str(long)], capsys)
    assert code == 2 and "long.csv row 52 (line 53): expected 3 fields as in the header, got 2" in err
    bom = tmp_path / "bom.csv"
    bom.write_text("\n".join(rows) + "\n", encoding="utf-8-sig")
    code, out = _run("drift", str(train), str(bom), "--clusters", "0", "--json")
    assert code == 0, out[:300]
    assert [f["name"] for f in json.loads(out)["per_feature"]] == ["age", "income", "region"]
