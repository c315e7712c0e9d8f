"""Server-rendered screens and the labelling screen's JSON endpoints, in-process through httpx."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select, update

from veracity.services import Actor
from veracity.services import projects as project_service
from veracity.storage.models import Annotation, Assignment, Project, User
from veracity.web.routers.ui_charts import bar_chart, heat_map, line_chart
from veracity.web.routers.ui_markdown import render_markdown

pytestmark = pytest.mark.anyio

PASSWORD = "pw-1234"
SCHEMA = {"kind": "classification", "labels": ["cat", "dog"], "input": "text",
          "instructions": "Pick **one**. <img src=x onerror=alert(1)> [docs](https://example.org/guide)"}


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def post_login(api: Any, **form: str) -> Any:
    """Post the sign-in form as a browser does: with the CSRF token of a freshly loaded form."""
    page = await api.client.get("/login")
    return await api.client.post("/login", data={**form, "csrf_token": csrf_of(page.text)})




async def make_project(api: Any, boss: Actor, n_items: int = 4, **members: str) -> int:
    view = project_service.create_project(api.db, boss, name="Pets <b>&</b>", schema=SCHEMA, overlap=2)
    project_service.import_items(api.db, boss, view.id, [{"text": f"animal {i}"} for i in range(n_items)])
    for user, role in members.items():
        project_service.add_member(api.db, boss, view.id, user, role)
    return view.id


async def test_sign_in_redirects_to_the_first_dashboard_and_pages_need_a_session(api: Any) -> None:
    boss = api.person("boss", "manager")
    pid = await make_project(api, boss)
    r = await api.client.get(f"/projects/{pid}/label")
    assert r.status_code == 303 and r.headers["location"] == f"/login?next=/projects/{pid}/label"
    r = await api.client.post("/login", data={"username": "boss", "password": PASSWORD})
    assert r.status_code == 403 and "expired" in r.text  # no CSRF token: a forged cross-site sign-in
    r = await post_login(api, username="boss", password="nope")
    assert r.status_code == 401 and "wrong password" in r.text
    api.client.cookies.clear()
    r = await post_login(api, username="boss", password=PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == f"/projects/{pid}/dashboard"
    r = await post_login(api, username="boss", password=PASSWORD, next="//evil.example")
    assert r.headers["location"] == f"/projects/{pid}/dashboard"  # no open redirect


async def test_sign_in_does_not_tell_by_its_time_which_names_exist(api: Any, monkeypatch: Any) -> None:
    """An unknown name, a deactivated user and a user without a password cost the same password
    hashing as a wrong password (before, unknown names answered without any: ~40 ms sooner)."""
    import hashlib

    api.person("boss", "manager")
    api.person("gone", "annotator")
    api.add_user("nopw", "annotator")  # API token only
    with api.db.transaction() as s:
        s.execute(update(User).where(User.name == "gone").values(is_active=False))
    await post_login(api, username="nobody", password="x")  # warm up: the decoy hash is made once
    calls: list[int] = []
    real = hashlib.scrypt
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **k: calls.append(1) or real(*a, **k))
    for name in ("boss", "nobody", "gone", "nopw"):
        calls.clear()
        r = await post_login(api, username=name, password="wrong-password")
        assert r.status_code == 401 and "unknown user name or wrong password" in r.text
        assert len(calls) == 1, name


async def test_every_form_needs_the_csrf_token(api: Any) -> None:
    api.person("boss", "manager")
    token = await api.sign_in("boss")
    form = {"name": "Birds", "kind": "classification", "label_name": ["crow", "owl"],
            "label_color": ["#000000", "#aa5500"], "label_hotkey": ["c", "o"], "overlap": "2", "gold_rate": "0.05",
            "instructions": "Look *closely*."}
    r = await api.client.post("/projects/new", data=form)
    assert r.status_code == 403 and "CSRF" in r.text
    r = await api.client.post("/projects/new", data={**form, "csrf_token": "forged"})
    assert r.status_code == 403
    r = await api.client.post("/projects/new", data={**form, "csrf_token": token})
    assert r.status_code == 303, r.text
    pid = int(r.headers["location"].split("/")[2])
    view = project_service.get_project(api.db, Actor(0, "root", "admin", 9), pid)
    assert view.schema["labels"] == ["crow", "owl"] and view.schema["hotkeys"] == {"crow": "c", "owl": "o"}
    assert view.schema["colors"]["owl"] == "#aa5500" and view.overlap == 2 and view.gold_rate == pytest.approx(0.05)
    # a bad schema comes back as the form with the message, the values kept
    r = await api.client.post("/projects/new", data={**form, "name": "Birds 2", "label_name": ["x", "x"],
                                                     "csrf_token": token})
    assert r.status_code == 422 and "duplicate labels" in r.text and 'value="Birds 2"' in r.text
    # signing out needs the token too; afterwards the session is gone
    r = await api.client.post("/logout", data={"csrf_token": token})
    assert r.status_code == 303
    r = await api.client.get(f"/projects/{pid}/dashboard")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_label_page_renders_instructions_safely_and_leases_ahead(api: Any) -> None:
    boss = api.person("boss", "manager")
    api.person("ann", "annotator")
    pid = await make_project(api, boss, ann="annotator")
    await api.sign_in("ann")
    r = await api.client.get(f"/projects/{pid}/label")
    assert r.status_code == 200
    assert "script-src 'self'" in r.headers["content-security-policy"]  # nothing from elsewhere runs
    assert "<strong>one</strong>" in r.text
    assert "<img src=x" not in r.text and "&lt;img src=x onerror=alert(1)&gt;" in r.text
    assert '<a href="https://example.org/guide" rel="noopener noreferrer">docs</a>' in r.text
    assert "Pets &lt;b&gt;&amp;&lt;/b&gt;" in r.text
    boot = json.loads(re.search(r'<script type="application/json" id="boot">(.*?)</script>', r.text, re.S).group(1))  # type: ignore[union-attr]
    shown = boot["task"]["task_id"]
    # the screen then leases the following item in the background, passing over the one it shows
    r = await api.client.post(f"/ui/api/projects/{pid}/ahead", json={"holding": [shown]},
                              headers={"x-csrf-token": csrf_of(r.text), "accept": "application/json"})
    assert r.status_code == 200 and r.json()["next"]["task_id"] != shown
    with api.db.transaction(write=False) as s:
        leased = s.execute(select(Assignment.task_id).where(Assignment.status == "leased")).scalars().all()
    assert sorted(leased) == sorted([shown, r.json()["next"]["task_id"]])


async def test_submit_skip_undo_endpoints(api: Any) -> None:
    boss = api.person("boss", "manager")
    api.person("ann", "annotator")
    pid = await make_project(api, boss, n_items=4, ann="annotator")
    token = await api.sign_in("ann")
    await api.client.get(f"/projects/{pid}/label")
    base = f"/ui/api/projects/{pid}"
    headers = {"x-csrf-token": token, "accept": "application/json"}
    await api.client.post(f"{base}/ahead", headers=headers, json={"holding": []})  # holds nothing: the same task
    with api.db.transaction(write=False) as s:
        [first] = s.execute(select(Assignment.task_id)).scalars().all()
    r = await api.client.post(f"{base}/ahead", headers=headers, json={"holding": [first]})
    second = r.json()["next"]["task_id"]

    r = await api.client.post(f"{base}/submit", json={"task_id": first, "value": "cat", "holding": [second]},
                              headers={"accept": "application/json"})
    assert r.status_code == 403  # no CSRF header
    assert r.json()["error"]["code"] == "permission_denied"

    r = await api.client.post(f"{base}/submit", headers=headers,
                              json={"task_id": first, "value": "cat", "holding": [second], "duration_ms": 1200,
                                    "idempotency_key": "k1"})
    assert r.status_code == 200, r.text
    third = r.json()["next"]["task_id"]
    assert third not in (first, second)

    r = await api.client.post(f"{base}/submit", headers=headers, json={"task_id": second, "value": "lion"})
    assert r.status_code == 422 and "unknown label" in r.json()["error"]["message"]

    r = await api.client.post(f"{base}/skip", headers=headers, json={"task_id": second, "holding": [third]})
    assert r.status_code == 200
    fourth = r.json()["next"]["task_id"]
    assert fourth not in (first, second, third)

    r = await api.client.post(f"{base}/undo", headers=headers, json={})
    assert r.status_code == 200
    back = r.json()["next"]
    assert back["task_id"] == first and back["previous_value"] == "cat"
    with api.db.transaction(write=False) as s:
        statuses = s.execute(select(Annotation.status, Annotation.duration_ms)).all()
    assert [tuple(x) for x in statuses] == [("withdrawn", 1200)]


async def test_labels_from_the_screen_start_the_consensus_refit(api: Any) -> None:
    """As with the REST API, the 25th label submitted on the labelling screen of a ``ds`` project
    refits its consensus model (``quality.maybe_refit`` runs after the response); the 24th does not."""
    boss = api.person("boss", "manager")
    api.person("ann", "annotator")
    view = project_service.create_project(api.db, boss, name="Refit", schema=SCHEMA, consensus_method="ds")
    project_service.import_items(api.db, boss, view.id, [{"text": f"animal {i}"} for i in range(30)])
    project_service.add_member(api.db, boss, view.id, "ann", "annotator")
    token = await api.sign_in("ann")
    base = f"/ui/api/projects/{view.id}"
    headers = {"x-csrf-token": token, "accept": "application/json"}
    task = (await api.client.post(f"{base}/ahead", headers=headers, json={"holding": []})).json()["next"]

    def last_refit() -> Any:
        with api.db.transaction(write=False) as s:
            project = s.get(Project, view.id)
            assert project is not None
            return (project.settings or {}).get("last_refit")

    for n in range(1, 26):
        r = await api.client.post(f"{base}/submit", headers=headers,
                                  json={"task_id": task["task_id"], "value": "cat" if n % 3 else "dog"})
        assert r.status_code == 200, r.text
        task = r.json()["next"]
        if n == 24:
            assert last_refit() is None
    refit = last_refit()
    assert refit is not None and refit["method"] == "ds" and refit["n_answers"] == 25


async def test_dashboard_review_and_issue_pages(api: Any) -> None:
    from veracity.services import tasks as task_service

    boss = api.person("boss", "manager")
    ann, bob = api.person("ann", "annotator"), api.person("bob", "annotator")
    pid = await make_project(api, boss, n_items=2, ann="annotator", bob="annotator")
    for actor, label in ((ann, "cat"), (bob, "dog")):
        task = task_service.next_task(api.db, actor, pid)
        assert task is not None
        task_service.submit_annotation(api.db, actor, task["task_id"], label, duration_ms=2000)
    await api.sign_in("boss")
    r = await api.client.get(f"/projects/{pid}/dashboard")
    assert r.status_code == 200
    html = r.text
    assert html.count('<svg class="chart') >= 4  # progress, distribution, agreement, confusion
    assert "Pairwise agreement by order of labelling: 1-1: 0%, 2-2: 0%" in html  # the two labels disagree
    rows = {m.group(1): m.group(2) for m in re.finditer(r'<th scope="row">(ann|bob)</th>\s*<td>(.*?)</td>', html, re.S)}
    assert sorted(rows) == ["ann", "bob"]
    assert sorted(re.search(r"(\d+)% <span", v).group(1) for v in rows.values()) == ["0", "100"]  # type: ignore[union-attr]
    assert "2.0 s" in html  # median time per item
    assert "Consensus model" not in html  # no full refit yet
    from veracity.services import quality as quality_service

    quality_service.refit_project(api.db, pid)
    html = (await api.client.get(f"/projects/{pid}/dashboard")).text
    refitted = r"Consensus model: <strong>mv</strong> over 2 labels, refitted \d{4}-\d\d-\d\d \d\d:\d\d UTC"
    assert re.search(refitted, html)
    assert "Confidence not tempered." in html  # vote shares
    with api.db.transaction() as s:
        project = s.get(Project, pid)
        refit = project.settings["last_refit"]
        calibration = {"source": "gold", "temperature": 2.5, "n_gold": 24}
        project.settings = {**project.settings, "last_refit": {**refit, "method": "ds", "calibration": calibration}}
    html = (await api.client.get(f"/projects/{pid}/dashboard")).text
    assert "Consensus model: <strong>ds</strong>" in html
    assert "Confidence calibrated on 24 gold items (temperature 2.50)." in html
    r = await api.client.get(f"/projects/{pid}/review")
    assert r.status_code == 200 and "50% confidence" in r.text and 'value="correct:&#34;dog&#34;"' in r.text
    r = await api.client.get(f"/projects/{pid}/issues")
    assert r.status_code == 200 and "No suspect items" in r.text
    # annotators cannot open the manager screens
    await api.sign_in("ann")
    r = await api.client.get(f"/projects/{pid}/dashboard")
    assert r.status_code == 403 and "Error 403" in r.text


def test_markdown_subset_escapes_everything_else() -> None:
    html = str(render_markdown("# Title\n\nSome `<code>` and **bold**\n\n- [x](javascript:alert(1))\n- two"))
    assert html == ("<h3>Title</h3>\n<p>Some <code>&lt;code&gt;</code> and <strong>bold</strong></p>\n"
                    "<ul><li>[x](javascript:alert(1))</li><li>two</li></ul>")
    assert str(render_markdown(None)) == ""


def test_charts_are_accessible_svg_with_escaped_text() -> None:
    bars = str(bar_chart([("<cat>", 3), ("dog", 1)], title="Labels"))
    assert bars.startswith('<svg class="chart bars" role="img"')
    assert "<title>Labels: &lt;cat&gt; 3, dog 1</title>" in bars
    assert "<cat>" not in bars
    line = str(line_chart([("1-10", 0.5), ("11-20", 1.0)], title="Agreement"))
    assert "<title>Agreement: 1-10: 50%, 11-20: 100%</title>" in line
    heat = str(heat_map(["a", "b"], [[3, 1], [0, 2]], title="ann"))
    assert "a labelled b: 1" in heat and "b labelled a" not in heat


async def test_review_of_spans_shows_each_annotators_marks(api: Any) -> None:
    from veracity.services import tasks as task_service
    from veracity.storage.models import Task

    boss = api.person("boss", "manager")
    ann, bob = api.person("ann", "annotator"), api.person("bob", "annotator")
    view = project_service.create_project(api.db, boss, name="Names", schema={"kind": "spans", "labels": ["who"]},
                                          overlap=2)
    project_service.import_items(api.db, boss, view.id, [{"text": "Ada met <Bob>"}])
    for name in ("ann", "bob"):
        project_service.add_member(api.db, boss, view.id, name, "annotator")
    for actor, value in ((ann, [{"start": 0, "end": 3, "label": "who"}]),
                         (bob, [{"start": 8, "end": 13, "label": "who"}])):
        task = task_service.next_task(api.db, actor, view.id)
        assert task is not None
        task_service.submit_annotation(api.db, actor, task["task_id"], value)
    with api.db.transaction() as s:
        s.execute(Task.__table__.update().values(status="review"))
    await api.sign_in("boss")
    r = await api.client.get(f"/projects/{view.id}/review")
    assert r.status_code == 200
    assert '<mark style="--c: #0072b2" data-label="who">Ada</mark> met &lt;Bob&gt;' in r.text
    assert 'Ada met <mark style="--c: #0072b2" data-label="who">&lt;Bob&gt;</mark>' in r.text
