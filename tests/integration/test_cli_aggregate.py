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


# ------------------------------------------------------------------ bad input found by an audit
def error_of(capsys, *args: str) -> str:
    """stderr of ``veracity ...``, which must end with exit code 2 and no traceback."""
    assert exit_code(*args) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert "Traceback" not in err
    return err


def write_parquet_nan(path: Path) -> Path:
    pq.write_table(
        pa.table(
            {"worker": ["w1", "w2", "w1", "w2"], "task": ["t1", "t1", "t2", "t2"], "label": [1.0, np.nan, 2.0, 2.0]}
        ),
        path,
    )
    return path


@pytest.mark.parametrize("command", ["aggregate", "agreement"])
def test_nan_label_is_rejected_naming_the_line(tmp_path: Path, command: str, capsys) -> None:
    src = tmp_path / "nan.jsonl"
    src.write_text('{"worker":"w2","task":"t1","label":2}\n{"worker":"w1","task":"t1","label":NaN}\n')
    args = ["--out", str(tmp_path / "o.csv")] if command == "aggregate" else ["--level", "interval"]
    err = error_of(capsys, command, str(src), *args)
    assert "nan.jsonl: line 2: field 'label' is NaN" in err
    parquet = write_parquet_nan(tmp_path / "nan.parquet")
    err = error_of(capsys, command, str(parquet), *args)
    assert "nan.parquet: row 2: field 'label' is NaN" in err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize(
    "content,line",
    [
        ('worker,task,label\nw1,t1,"a\nw2,t1,a\n', 2),
        ('worker,task,label\nw2,t1,a\nw1,t1,"a\n', 3),
        ('worker,task,label\nw2,t1,a\nw1,t1,"a', 3),
        ('worker,task,label,note\nw1,t1,a,"oops\nw2,t1,a,x\nw3,t1,b,y\n', 2),
        ('"worker","task","label"\n"w1","t1","a"\n\n"w2","t1",\n', 4),
    ],
)
def test_unterminated_quote_is_an_error(tmp_path: Path, content: str, line: int, capsys) -> None:
    src = tmp_path / "q.csv"
    src.write_text(content)
    err = error_of(capsys, "aggregate", str(src), "--out", str(tmp_path / "o.csv"))
    if content.endswith(",\n"):  # not a quote problem: the empty field is found on its real line
        assert f"q.csv: line {line}: field 'label' is empty" in err
    else:
        assert f"q.csv: line {line}: unterminated quote" in err


def test_unterminated_quote_in_a_file_of_many_blocks(tmp_path: Path, monkeypatch, capsys) -> None:
    from veracity.cli import aggregate as aggregate_cli

    monkeypatch.setattr(aggregate_cli, "_CSV_BLOCK_SIZE", 4096, raising=False)
    rows = "".join(f"w{i % 7},t{i},a\n" for i in range(2000))
    src = tmp_path / "q.csv"
    src.write_text("worker,task,label\n" + rows + 'w1,t1,"a\n' + rows)
    err = error_of(capsys, "aggregate", str(src), "--out", str(tmp_path / "o.csv"))
    assert "q.csv: line 2002: unterminated quote" in err
    # in a file of quoted fields the next quote closes it: the record then has too many fields
    quoted = "".join(f'"w{i % 7}","t{i}","a"\n' for i in range(2000))
    src.write_text("worker,task,label\n" + quoted + 'w1,t1,"a\n' + quoted)
    err = error_of(capsys, "aggregate", str(src), "--out", str(tmp_path / "o.csv"))
    assert "q.csv: line 2002: expected 3 fields as in the header, got 5 (a quoted field runs on to line 2003" in err


@pytest.mark.parametrize("block_size", [4096, 1 << 24])
def test_closed_quoted_newlines_still_work(tmp_path: Path, monkeypatch, block_size: int) -> None:
    from veracity.cli import aggregate as aggregate_cli

    monkeypatch.setattr(aggregate_cli, "_CSV_BLOCK_SIZE", block_size, raising=False)
    rows = "".join(f'"w{i % 7}","t{i}","line one\nline two"\n' for i in range(1000))
    src = tmp_path / "multi.csv"
    src.write_text("worker,task,label\n" + rows + "\n\n")
    out = tmp_path / "o.csv"
    res = run("aggregate", str(src), "--method", "mv", "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    labels = read(out)
    assert len(labels) == 1000 and {r["label"] for r in labels} == {"line one\nline two"}


def test_ordinal_level_sorts_decimal_labels_as_numbers(tmp_path: Path) -> None:
    pairs = [("1", "2"), ("2", "3"), ("1", "1"), ("3", "3"), ("2", "2"), ("1", "3")]
    as_int = write_answers(
        tmp_path / "i.csv", [(w, f"t{i}", p[j]) for i, p in enumerate(pairs) for j, w in enumerate("ab")]
    )
    dec = {"1": "2.5", "2": "9.5", "3": "10.5"}
    as_dec = write_answers(
        tmp_path / "d.csv", [(w, f"t{i}", dec[p[j]]) for i, p in enumerate(pairs) for j, w in enumerate("ab")]
    )
    for metric in ("krippendorff", "cohen"):
        expected = json.loads(run("agreement", str(as_int), "--metric", metric, "--level", "ordinal", "--json").output)
        got = json.loads(run("agreement", str(as_dec), "--metric", metric, "--level", "ordinal", "--json").output)
        assert got["value"] == pytest.approx(expected["value"])
    # "1" and "1.0" are the same number at a numeric level
    mixed = write_answers(
        tmp_path / "m.csv", [("a", "t1", "1"), ("b", "t1", "1.0"), ("a", "t2", "2"), ("b", "t2", "2")]
    )
    res = run("agreement", str(mixed), "--level", "ordinal", "--json")
    assert json.loads(res.output)["value"] == pytest.approx(1.0)


def test_numeric_levels_reject_negative_or_non_numeric_labels(tmp_path: Path, capsys) -> None:
    src = write_answers(
        tmp_path / "neg.csv", [("w1", "t1", "1"), ("w2", "t1", "-1"), ("w1", "t2", "1"), ("w2", "t2", "1")]
    )
    err = error_of(capsys, "agreement", str(src), "--level", "ratio")
    assert "neg.csv: line 3: label '-1' is negative" in err
    assert run("agreement", str(src), "--level", "interval").exit_code == 0
    src = write_answers(tmp_path / "inf.csv", [("w1", "t1", "1"), ("w2", "t1", "2"), ("w1", "t2", "nan")])
    for level in ("interval", "ratio"):
        err = error_of(capsys, "agreement", str(src), "--level", level)
        assert f"inf.csv: line 4: label 'nan' is not a finite number; the {level} level needs numbers" in err


def test_conflicting_gold_is_an_error(tmp_path: Path, capsys) -> None:
    src = write_answers(tmp_path / "a.csv", [("w1", "t1", "a"), ("w2", "t1", "b"), ("w1", "t2", "b")])
    gold = tmp_path / "gold.csv"
    gold.write_text("task,label\nt1,a\nt1,b\n")
    err = error_of(capsys, "aggregate", str(src), "--gold", str(gold), "--out", str(tmp_path / "o.csv"))
    assert "gold.csv: line 3: task 't1' has gold label 'b', but line 2 gave 'a'" in err
    gold.write_text("task,label\nt1,a\nt2,b\nt1,a\n")
    assert run("aggregate", str(src), "--gold", str(gold), "--out", str(tmp_path / "o.csv")).exit_code == 0


def test_jsonl_errors_name_the_physical_line(tmp_path: Path, capsys) -> None:
    good = '{"worker":"w1","task":"t1","label":"a"}\n'
    src = tmp_path / "a.jsonl"
    src.write_text(good + "\n" + '{"worker":"w1","task":"t2",bad}\n' + good)
    assert "a.jsonl: line 3: not valid JSON" in error_of(
        capsys, "aggregate", str(src), "--out", str(tmp_path / "o.csv")
    )
    src.write_text(good * 50_000 + '{"worker":"w1","task":"t2" "label":"a"}\n' + good * 5)
    assert "a.jsonl: line 50001: not valid JSON" in error_of(capsys, "agreement", str(src))
    src.write_text(good + "\n\n" + '{"worker":"w1","task":"t2"}\n')
    assert "a.jsonl: line 4: field 'label' is missing or null" in error_of(capsys, "agreement", str(src))
    src.write_text(good + '{"worker":"w1","task":"t2","label":1}\n')
    err = error_of(capsys, "agreement", str(src))
    assert "a.jsonl: line 2: field 'label' is a number here but text on line 1" in err
    src.write_bytes((good + '{"worker":"w1","task":"t2","label":"caf\xe9"}\n').encode("latin-1"))
    assert "a.jsonl: line 2: field 'label' is not valid UTF-8 text" in error_of(capsys, "agreement", str(src))
    answers = write_answers(tmp_path / "a.csv", [("w1", "t1", "a"), ("w2", "t2", "b")])
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"task":"t1","label":"a"}\n{"task":"t2","label":"zzz"}\n')
    err = error_of(capsys, "aggregate", str(answers), "--gold", str(gold), "--out", str(tmp_path / "o.csv"))
    assert "gold.jsonl: line 2: gold label 'zzz'" in err


def test_na_like_cells_are_plain_values(tmp_path: Path) -> None:
    src = write_answers(
        tmp_path / "na.csv",
        [("w1", "NA", "null"), ("w2", "NA", "null"), ("N/A", "NaN", "yes"), ("w1", "NaN", "yes"), ("w2", "US", "NA")],
    )
    out = tmp_path / "o.csv"
    res = run("aggregate", str(src), "--method", "mv", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert {r["task"]: r["label"] for r in read(out)} == {"NA": "null", "NaN": "yes", "US": "NA"}


def test_output_paths_are_checked_before_any_work(tmp_path: Path, capsys) -> None:
    src = write_answers(tmp_path / "a.csv", [("w1", "t1", "a")])
    (tmp_path / "dir.csv").mkdir()
    out = tmp_path / "o.csv"
    err = error_of(capsys, "aggregate", str(src), "--out", str(out), "--workers-out", str(tmp_path / "dir.csv"))
    assert "dir.csv: is a directory" in err
    assert not out.exists()


def test_header_problems(tmp_path: Path, capsys) -> None:
    src = tmp_path / "h.csv"
    src.write_text("worker,task,label,label\nw1,t1,a,b\nw2,t1,a,b\n")
    err = error_of(capsys, "aggregate", str(src), "--out", str(tmp_path / "o.csv"))
    assert "h.csv: field 'label' appears 2 times" in err
    src.write_text("worker, task , label\nw1,t1,a\n")
    assert run("aggregate", str(src), "--out", str(tmp_path / "o.csv")).exit_code == 0
    src.write_text("worker,task,label\nw1,t1,a\nw2,t1,a,b\n")
    err = error_of(capsys, "aggregate", str(src), "--out", str(tmp_path / "o.csv"))
    assert "h.csv: line 3: expected 3 fields as in the header, got 4" in err
