"""``veracity import/export/show/version/diff`` end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from veracity.cli import app, main


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_import_version_diff_export_show(db_url: str, tmp_path: Path) -> None:
    src = tmp_path / "items.jsonl"
    src.write_text("".join(json.dumps({"id": f"r{i}", "text": f"row {i}"}) + "\n" for i in range(5)))
    code, out = _run("import", str(src), "--dataset", "reviews", "--db", db_url)
    assert code == 0, out
    assert "Imported 5 item(s) into dataset 'reviews'" in out
    assert _run("version", "create", "reviews", "--db", db_url)[1].startswith("Created version 1")
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps({"id": "r9", "text": "row 9"}) + "\n" + json.dumps({"text": "row 0"}) + "\n")
    code, out = _run("import", str(more), "--dataset", "reviews", "--db", db_url)
    assert "Imported 1 item(s)" in out and "1 exact duplicate(s)" in out
    _run("version", "create", "reviews", "--db", db_url)
    code, out = _run("diff", "reviews", "1", "2", "--db", db_url)
    assert code == 0
    assert "1 added, 0 removed, 0 relabelled" in out
    assert "+ item 6 (r9)" in out
    code, out = _run(
        "export", "reviews", "--format", "csv", "--out", str(tmp_path / "out.csv"), "--version", "2", "--db", db_url
    )
    assert code == 0, out
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 7
    code, out = _run("show", "3", "--json", "--db", db_url)
    lineage = json.loads(out)
    assert lineage["source"] == str(src) and lineage["source_row"] == 3
    assert [v["version"] for v in lineage["versions"]] == [1, 2]


def test_bad_input_exits_2_naming_file_and_row(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'v.db'}"
    src = tmp_path / "bad.jsonl"
    src.write_text('{"text": "ok"}\n{"text": \n')
    try:
        main(["import", str(src), "--dataset", "d", "--db", db])
    except SystemExit as exc:
        assert exc.code == 2
    err = capsys.readouterr().err
    assert "bad.jsonl: row 2: malformed JSON" in err
    code, out = _run("import", str(src), "--dataset", "d", "--skip-bad", "--db", db)
    assert code == 0
    assert "1 rejected row(s)" in out and "bad.jsonl.rejected.jsonl" in out


def test_import_with_unmapped_labels_needs_allow(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'v.db'}"
    src = tmp_path / "l.jsonl"
    src.write_text(json.dumps({"text": "a", "label": "kitty"}) + "\n" + json.dumps({"text": "b", "label": "x"}) + "\n")
    onto = tmp_path / "o.toml"
    onto.write_text('[labels.cat]\nsynonyms = ["kitty"]\n')
    try:
        main(["import", str(src), "--dataset", "d", "--map", str(onto), "--db", db])
    except SystemExit as exc:
        assert exc.code == 2
    assert "1 unmapped label(s): 'x'" in capsys.readouterr().err
    code, out = _run("import", str(src), "--dataset", "d", "--map", str(onto), "--allow-unmapped", "--db", db)
    assert code == 0, out
    assert "unmapped labels (parked): x" in out


def test_import_into_a_project_keeps_labels_and_annotators(db_url: str, tmp_path: Path) -> None:
    from veracity.services import projects as project_service
    from veracity.services.users import authenticate_token, create_user
    from veracity.storage import Database

    database = Database(db_url)
    try:
        _, token = create_user(database, "boss", "admin")
        admin = authenticate_token(database, token)
        project_service.create_project(
            database, admin, name="votes", schema={"kind": "classification", "labels": ["a", "b"]}
        )
    finally:
        database.dispose()
    answers = tmp_path / "answers.csv"
    answers.write_text("worker,task,label\nw1,t1,a\nw2,t1,b\nw1,t2,b\n")
    code, out = _run("import", str(answers), "--project", "votes", "--db", db_url)
    assert code == 0, out
    assert "Imported 2 item(s) into dataset 'project:votes'" in out
    assert "labels: 3 imported, 0 parked" in out
    code, out = _run("show", "1", "--db", db_url)
    assert code == 0, out
    assert "ext:w1" in out and "ext:w2" in out
    assert "crowd:row 2" in out
    code, out = _run("import", str(answers), "--db", db_url)
    assert code != 0


def _stored(db_url: str) -> tuple[int, int, int]:
    from sqlalchemy import func, select

    from veracity.storage import Database
    from veracity.storage.models import Dataset, ImportBatch, Item

    database = Database(db_url)
    try:
        with database.transaction(write=False) as s:
            return tuple(  # type: ignore[return-value]
                s.execute(select(func.count()).select_from(m)).scalar_one() for m in (Dataset, ImportBatch, Item)
            )
    finally:
        database.dispose()


def test_bad_sources_and_options_exit_2_naming_the_file(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of these stops with exit code 2 and one line naming the file (no traceback), before
    anything is stored; the source is never overwritten."""
    monkeypatch.chdir(tmp_path)
    good = tmp_path / "good.jsonl"
    good.write_text('{"text": "a"}\n{bad\n')
    files = {
        "latin.csv": b"text,label\nhello,cat\ncaf\xe9,dog\nbye,cat\n",
        "latin_label.jsonl": b'{"text":"one","label":"a"}\n{"text":"two","label":"caf\xe9"}\n',
        "crowd_latin.jsonl": b'{"worker":"w1","task":"t1","label":"a"}\n{"worker":"w","task":"t2","label":"caf\xe9"}\n',
        "garbage.parquet": b"PAR1notreally",
        "empty.jsonl": b"",
        "latin.toml": b'[labels.cat]\nsynonyms=["caf\xe9"]\n',
        "wrong.toml": b"[labels]\ncat = 3\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "folder").mkdir()
    cases = [
        (["latin.csv"], "latin.csv: row 2: not valid UTF-8"),
        (["latin_label.jsonl"], "latin_label.jsonl: row 2: not valid UTF-8"),
        (["crowd_latin.jsonl", "--format", "crowd"], "crowd_latin.jsonl: row 2: not valid UTF-8"),
        (["garbage.parquet"], "garbage.parquet: not a readable Parquet file"),
        (["empty.jsonl"], "empty.jsonl: no records"),
        (["folder"], "folder: no records"),
        (["good.jsonl", "--map", "latin.toml"], "latin.toml: line 2: not valid UTF-8"),
        (["good.jsonl", "--map", "folder"], "folder: is a folder"),
        (["good.jsonl", "--map", "wrong.toml"], "wrong.toml: label 'cat' must be a table"),
        (["good.jsonl", "--skip-bad", "--rejected", "good.jsonl"], "is the source being imported"),
        (["good.jsonl", "--skip-bad", "--rejected", "folder"], "folder: the file for rejected rows is a folder"),
        (["good.jsonl", "--chunk-size", "0"], "--chunk-size must be at least 1, got 0"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(app, ["import", *args, "--dataset", "d", "--db", db_url])
        out = result.output
        assert result.exit_code == 2, (args, out)
        assert message in " ".join(out.split()), (args, out)
        assert "Traceback" not in out and not isinstance(result.exception, UnicodeError), args
    assert good.read_text() == '{"text": "a"}\n{bad\n'
    assert _stored(db_url) == (0, 0, 0)
