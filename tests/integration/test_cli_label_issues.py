"""``veracity label-issues``: .npy/.csv/.parquet in, ISSUES.csv out, exit 2 on bad input."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from veracity.cli import app
from veracity.errors import InvalidInputError
from veracity.quality.label_errors import find_label_issues


def make_problem(n: int = 300, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), truth] += 3.0
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    labels = truth.copy()
    flip = rng.random(n) < 0.1
    labels[flip] = (truth[flip] + 1) % k
    return labels, probs.astype(np.float32), flip


def read_issues(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def run(*args: str):
    return CliRunner().invoke(app, ["label-issues", *args])


def error_text(result) -> str:
    """The error a failed command reported: exit code 2 with one line, or the raised exception."""
    if isinstance(result.exception, InvalidInputError):
        return str(result.exception)
    assert result.exit_code == 2, (result.exit_code, result.output)
    return " ".join(result.output.split())


def test_npy_to_issues_csv(tmp_path: Path) -> None:
    labels, probs, flip = make_problem()
    np.save(tmp_path / "L.npy", labels)
    np.save(tmp_path / "P.npy", probs)
    out = tmp_path / "ISSUES.csv"
    result = run("--labels", str(tmp_path / "L.npy"), "--pred-probs", str(tmp_path / "P.npy"), "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = read_issues(out)
    assert list(rows[0]) == ["index", "score", "is_issue", "suggested"]
    assert len(rows) == len(labels)
    assert sorted(int(r["index"]) for r in rows) == list(range(len(labels)))
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores)  # most likely mislabelled first
    expected = find_label_issues(labels, probs)
    flagged = {int(r["index"]) for r in rows if r["is_issue"] == "true"}
    assert flagged == set(np.flatnonzero(expected.mask).tolist())
    assert [int(r["index"]) for r in rows] == expected.ranked.tolist()
    assert flip[sorted(flagged)].mean() > 0.8
    assert f"{len(flagged)} of {len(labels)} items flagged" in result.output


def test_csv_and_parquet_inputs_agree(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    labels, probs, _ = make_problem(200, 4, seed=1)
    probs = probs.astype(np.float64)
    np.savetxt(tmp_path / "L.csv", labels, fmt="%d", header="label", comments="")
    np.savetxt(tmp_path / "P.csv", probs, delimiter=",", fmt="%.17g")
    pq.write_table(pa.table({"label": labels}), tmp_path / "L.parquet")
    pq.write_table(pa.table({f"p{j}": probs[:, j] for j in range(4)}), tmp_path / "P.parquet")
    outs = []
    for lab, pp in (("L.csv", "P.csv"), ("L.parquet", "P.parquet")):
        out = tmp_path / f"{lab}.issues.csv"
        result = run("--labels", str(tmp_path / lab), "--pred-probs", str(tmp_path / pp), "--out", str(out))
        assert result.exit_code == 0, result.output
        outs.append([(r["index"], r["is_issue"]) for r in read_issues(out)])
    assert outs[0] == outs[1]


def test_method_option(tmp_path: Path) -> None:
    labels, probs, _ = make_problem()
    np.save(tmp_path / "L.npy", labels)
    np.save(tmp_path / "P.npy", probs)
    out = tmp_path / "I.csv"
    args = ["--labels", str(tmp_path / "L.npy"), "--pred-probs", str(tmp_path / "P.npy"), "--out", str(out)]
    result = run(*args, "--method", "predicted_neq_given")
    assert result.exit_code == 0, result.output
    flagged = {int(r["index"]) for r in read_issues(out) if r["is_issue"] == "true"}
    assert flagged == set(np.flatnonzero(probs.argmax(axis=1) != labels).tolist())
    bad = run(*args, "--method", "nope")
    assert "--method" in error_text(bad)


def _bad_cases(tmp_path: Path) -> list[tuple[str, str, str]]:
    labels, probs, _ = make_problem(20, 3)
    np.save(tmp_path / "L.npy", labels)
    np.save(tmp_path / "P.npy", probs)
    np.save(tmp_path / "short.npy", probs[:-1])
    nan = probs.copy()
    nan[7, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    unnorm = probs.astype(np.float64)
    unnorm[4] = [0.5, 0.4, 0.3]
    np.save(tmp_path / "sum.npy", unnorm)
    out_of_range = labels.copy()
    out_of_range[11] = 3
    np.save(tmp_path / "range.npy", out_of_range)
    (tmp_path / "junk.npy").write_bytes(b"not a numpy file")
    (tmp_path / "words.csv").write_text("a,b,c\nx,y,z\n")
    return [
        ("L.npy", "short.npy", r"L\.npy and .*short\.npy must have the same number of rows, got 20 and 19"),
        ("L.npy", "nan.npy", r"nan\.npy row 7"),
        ("L.npy", "sum.npy", r"sum\.npy row 4: probabilities must sum to 1"),
        ("range.npy", "P.npy", r"range\.npy row 11: label 3 is outside 0\.\.2"),
        ("junk.npy", "P.npy", r"junk\.npy: cannot read"),
        ("L.npy", "missing.npy", r"missing\.npy: no such file"),
        ("L.npy", "words.csv", r"words\.csv line 2, column 'a': 'x' is not a number"),
    ]


def test_bad_input_raises_invalid_input(tmp_path: Path) -> None:
    for lab, pp, pattern in _bad_cases(tmp_path):
        result = run(
            "--labels", str(tmp_path / lab), "--pred-probs", str(tmp_path / pp), "--out", str(tmp_path / "o.csv")
        )
        text = error_text(result)
        assert re.search(pattern, text), (pattern, text)


def test_bad_input_exits_2_with_message(tmp_path: Path) -> None:
    labels, probs, _ = make_problem(20, 3)
    np.save(tmp_path / "L.npy", labels)
    nan = probs.copy()
    nan[7, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    cmd = [sys.executable, "-c", "from veracity.cli import main; main()", "label-issues"]
    proc = subprocess.run(
        [
            *cmd,
            "--labels",
            str(tmp_path / "L.npy"),
            "--pred-probs",
            str(tmp_path / "nan.npy"),
            "--out",
            str(tmp_path / "o.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "nan.npy row 7" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o.csv").exists()


def test_issues_csv_formatting(tmp_path: Path) -> None:
    from veracity.cli.label_issues import _csv_rows, write_issues_csv

    scores = np.array([0.0, 1.0, 0.1234565, 0.5], dtype=np.float32)
    mask = np.array([True, False, True, False])
    suggested = np.array([10, 0, 2, 999])
    out = tmp_path / "I.csv"
    write_issues_csv(out, np.array([3, 0, 2, 1]), scores, mask, suggested)
    lines = out.read_text().splitlines()
    assert lines == [
        "index,score,is_issue,suggested",
        "3,0.500000,false,999",
        "0,0.000000,true,10",
        "2,0.123457,true,2",
        "1,1.000000,false,0",
    ]
    big = _csv_rows(np.array([12345678901]), np.array([0.25]), np.array([True]), np.array([3]))
    assert big == b"12345678901,0.250000,true,3\n"


def test_label_column_picked_from_wide_files(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    labels, probs, _ = make_problem(120, 3, seed=4)
    np.save(tmp_path / "P.npy", probs)
    ids = np.arange(1000, 1120)
    (tmp_path / "L.csv").write_text("id,label\n" + "".join(f"{i},{v}\n" for i, v in zip(ids, labels, strict=True)))
    pq.write_table(pa.table({"id": ids, "label": labels}), tmp_path / "L.parquet")
    expected = find_label_issues(labels, probs)
    for name in ("L.csv", "L.parquet"):
        out = tmp_path / f"{name}.out.csv"
        result = run("--labels", str(tmp_path / name), "--pred-probs", str(tmp_path / "P.npy"), "--out", str(out))
        assert result.exit_code == 0, result.output
        assert [int(r["index"]) for r in read_issues(out)] == expected.ranked.tolist()


def _flagged(result, out: Path) -> list[int]:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.output
    return [int(r["index"]) for r in read_issues(out)]


def test_csv_bom_headers_and_quotes(tmp_path: Path) -> None:
    labels, probs, _ = make_problem(60, 3, seed=2)
    expected = find_label_issues(labels, probs.astype(np.float64)).ranked.tolist()
    rows = "".join(f"{v}\n" for v in labels)
    prob_rows = "".join(",".join(f"{p:.17g}" for p in row) + "\n" for row in probs.astype(np.float64))
    np.save(tmp_path / "P.npy", probs.astype(np.float64))
    files = {
        "bom.csv": "\ufeff" + rows,  # a BOM used to make the first label a header: rows shifted by one
        "bomhdr.csv": "\ufefflabel,id\n" + "".join(f"{v},{i}\n" for i, v in enumerate(labels)),
        "rstyle.csv": '"id","label"\n' + "".join(f'"{i}",{v}\n' for i, v in enumerate(labels)),
        "quoted.csv": '"label","id"\r\n' + "".join(f'"{v}","{i}"\r\n' for i, v in enumerate(labels)),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8", newline="")
        out = tmp_path / f"{name}.out"
        result = run("--labels", str(tmp_path / name), "--pred-probs", str(tmp_path / "P.npy"), "--out", str(out))
        assert _flagged(result, out) == expected, name
    # both files with a BOM: same rows, not one fewer each
    (tmp_path / "P.csv").write_text("\ufeff" + prob_rows, encoding="utf-8")
    out = tmp_path / "both.out"
    result = run("--labels", str(tmp_path / "bom.csv"), "--pred-probs", str(tmp_path / "P.csv"), "--out", str(out))
    assert _flagged(result, out) == expected


def test_csv_errors_name_the_file_and_line(tmp_path: Path) -> None:
    labels, probs, _ = make_problem(20, 3)
    np.save(tmp_path / "P.npy", probs)
    np.save(tmp_path / "L.npy", labels)
    lines = [str(v) for v in labels]
    nan_probs = probs.astype(np.float64)
    nan_probs[4, 1] = np.nan
    files = {
        "blank.csv": ("label\n" + "\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:]) + "\n").encode(),
        "latin.csv": ("label\n" + "\n".join(lines[:3]) + "\n").encode() + "caf\xe9\n".encode("latin-1"),
        "float.csv": ("label\n" + "\n".join(lines[:3]) + "\n1.5\n" + "\n".join(lines[4:])).encode(),
        "range.csv": ("\n".join(lines[:9]) + "\n7\n" + "\n".join(lines[10:]) + "\n").encode(),
        "wide.csv": ("id,name\n" + "".join(f"{i},{v}\n" for i, v in enumerate(labels))).encode(),
        "noheader.csv": "".join(f"{i},{v}\n" for i, v in enumerate(labels)).encode(),
        "header_only.csv": b"label\n",
        "nan_probs.csv": ("a,b,c\n" + "".join(",".join(map(str, r)) + "\n" for r in nan_probs)).encode(),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "folder.csv").mkdir()
    cases = [
        ("blank.csv", "P.npy", "blank.csv line 7 is empty"),
        ("latin.csv", "P.npy", "latin.csv line 5: not valid UTF-8 (byte 0xe9)"),
        ("float.csv", "P.npy", "float.csv line 5: expected an integer class index, got 1.5"),
        ("range.csv", "P.npy", "range.csv line 10: label 7 is outside 0..2"),
        (
            "wide.csv",
            "P.npy",
            "wide.csv: expected one column of labels, got 2 (id, name); name the label column 'label'",
        ),
        ("noheader.csv", "P.npy", "noheader.csv: expected one column of labels, got shape (20, 2)"),
        ("header_only.csv", "P.npy", "header_only.csv: no rows after the header line (label)"),
        ("folder.csv", "P.npy", "folder.csv: is a directory"),
        ("L.npy", "nan_probs.csv", "nan_probs.csv line 6: values must be finite"),
    ]
    for lab, pp, expected in cases:
        result = run("--labels", str(tmp_path / lab), "--pred-probs", str(tmp_path / pp), "--out", str(tmp_path / "o"))
        assert expected in error_text(result), (lab, pp, error_text(result))


def test_uint64_labels_show_their_value(tmp_path: Path) -> None:
    labels, probs, _ = make_problem(20, 3)
    np.save(tmp_path / "P.npy", probs)
    big = labels.astype(np.uint64)
    big[3] = 2**63 + 2
    np.save(tmp_path / "L.npy", big)
    result = run(
        "--labels", str(tmp_path / "L.npy"), "--pred-probs", str(tmp_path / "P.npy"), "--out", str(tmp_path / "o")
    )
    assert "L.npy row 3: label 9223372036854775810 is not a class index (too large)" in error_text(result)
    np.save(tmp_path / "L.npy", labels.astype(np.uint64))  # small unsigned labels are fine
    out = tmp_path / "ok.csv"
    result = run("--labels", str(tmp_path / "L.npy"), "--pred-probs", str(tmp_path / "P.npy"), "--out", str(out))
    assert _flagged(result, out) == find_label_issues(labels, probs).ranked.tolist()
