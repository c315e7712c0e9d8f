"""The web UI in Debian's headless Chromium against a real ``veracity serve``.

Each test seeds its own small workspace through the services layer, drives the browser like a
person would (keyboard first), and then checks what reached the database.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect
from sqlalchemy import select

from _server import start_server
from veracity.services import Actor
from veracity.services import projects as project_service
from veracity.services import tasks as task_service
from veracity.services.demo import build_demo
from veracity.services.users import create_user
from veracity.storage import Database
from veracity.storage.models import Annotation, Consensus, Prediction, Review, Task, User

Shot = Callable[[Page, str], Path]
PASSWORD = "secret-pw"


@dataclass
class Workspace:
    db: Database
    users: dict[str, Actor]

    def user(self, name: str, role: str) -> Actor:
        view, _ = create_user(self.db, name, role, password=PASSWORD, clearance=1)
        actor = Actor(user_id=view.id, name=view.name, role=view.role, clearance=view.clearance)
        self.users[name] = actor
        return actor

    def project(self, name: str, schema: dict[str, Any], items: list[dict[str, Any]], *, overlap: int = 1,
                members: dict[str, str] | None = None, owner: str = "boss") -> int:
        actor = self.users[owner]
        view = project_service.create_project(self.db, actor, name=name, schema=schema, overlap=overlap)
        project_service.import_items(self.db, actor, view.id, items)
        for user, role in (members or {}).items():
            project_service.add_member(self.db, actor, view.id, user, role)
        return view.id

    def labels_of(self, user: str, project_id: int) -> list[Any]:
        with self.db.transaction(write=False) as s:
            return list(s.execute(
                select(Annotation.value)
                .join(User, User.id == Annotation.user_id)
                .where(User.name == user, Annotation.project_id == project_id, Annotation.status == "active")
                .order_by(Annotation.id)
            ).scalars())


@pytest.fixture(autouse=True)
def no_script_errors(page: Page) -> Iterator[None]:
    """Every test fails on an uncaught error in the page's scripts or a Content-Security-Policy violation."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield
    assert not errors, f"script errors in the page: {errors}"


@pytest.fixture
def ws(live_server_db: str) -> Iterator[Workspace]:
    db = Database(live_server_db)
    workspace = Workspace(db, {})
    workspace.user("boss", "admin")
    yield workspace
    db.dispose()


def sign_in(page: Page, base: str, name: str, *, next_path: str = "") -> None:
    page.goto(f"{base}/login" + (f"?next={next_path}" if next_path else ""))
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_load_state("domcontentloaded")


def wait_ready(page: Page) -> str:
    # expect() polls without evaluating strings, which the screens' Content-Security-Policy forbids
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    return str(page.evaluate("document.body.dataset.taskId"))


def press_and_wait_next(page: Page, key: str) -> str:
    """Press a key and wait until another item (or the end of the queue) is on screen."""
    before = page.evaluate("document.body.dataset.taskId")
    page.keyboard.press(key)
    expect(page.locator("body")).not_to_have_attribute("data-task-id", re.compile(f"^({before}|loading)$"))
    return str(page.evaluate("document.body.dataset.taskId"))


def wait_saved(page: Page) -> None:
    """Answers are sent in the background while the next item shows: wait until all have arrived."""
    expect(page.locator("body")).to_have_attribute("data-pending", "0")


SENTIMENT = {"kind": "classification", "labels": ["positive", "negative", "neutral"],
             "instructions": "Pick the **sentiment**. <script>alert(1)</script>"}
TEXTS = [{"id": f"t{i}", "text": f"Review number {i}: the kettle {'works' if i % 2 else 'broke'}."} for i in range(8)]


# --------------------------------------------------------------------------- sign-in
def test_sign_in_lands_on_dashboard_and_sign_out_ends_the_session(
    page: Page, live_server: str, ws: Workspace, screenshot: Shot
) -> None:
    pid = ws.project("Sentiment", SENTIMENT, TEXTS)
    page.goto(f"{live_server}/")
    expect(page).to_have_url(f"{live_server}/login")
    screenshot(page, "sign-in")
    page.get_by_label("User name").fill("boss")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong password")

    sign_in(page, live_server, "boss")
    expect(page).to_have_url(f"{live_server}/projects/{pid}/dashboard")
    expect(page.get_by_role("heading", name="Sentiment", level=1)).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "veracity_session")
    assert cookie["httpOnly"] is True
    assert page.evaluate("document.cookie") == ""  # not readable by scripts

    page.get_by_role("link", name="Projects").click()
    expect(page.get_by_role("link", name="Sentiment").first).to_be_visible()
    screenshot(page, "projects")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live_server}/login")
    page.goto(f"{live_server}/projects/{pid}/dashboard")
    expect(page).to_have_url(f"{live_server}/login?next=/projects/{pid}/dashboard")


# --------------------------------------------------------------------------- labelling by keyboard
def test_label_five_items_by_keyboard_then_undo_and_skip(
    page: Page, live_server: str, ws: Workspace, screenshot: Shot
) -> None:
    ws.user("ann", "annotator")
    pid = ws.project("Sentiment", SENTIMENT, TEXTS, members={"ann": "annotator"})
    sign_in(page, live_server, "ann")
    expect(page).to_have_url(f"{live_server}/projects/{pid}/label")
    wait_ready(page)
    # the instructions are Markdown rendered safely: bold works, the script tag is only text
    expect(page.locator(".instructions strong")).to_have_text("sentiment")
    expect(page.locator(".instructions")).to_contain_text("<script>alert(1)</script>")
    screenshot(page, "label-classification")

    keys = ["1", "2", "3", "1", "2"]
    for key in keys:
        press_and_wait_next(page, key)
    expect(page.locator("#counter")).to_have_text("5 labelled this session")
    wait_saved(page)
    assert ws.labels_of("ann", pid) == ["positive", "negative", "neutral", "positive", "negative"]

    press_and_wait_next(page, "u")  # undo brings the fifth item back with its old answer marked
    expect(page.locator(".label-button", has_text="your answer")).to_contain_text("negative")
    assert ws.labels_of("ann", pid) == ["positive", "negative", "neutral", "positive"]
    press_and_wait_next(page, "3")  # relabel it
    wait_saved(page)
    assert ws.labels_of("ann", pid)[-1] == "neutral"

    skipped = page.evaluate("document.body.dataset.taskId")
    press_and_wait_next(page, "s")
    wait_saved(page)
    with ws.db.transaction(write=False) as s:
        task = s.get(Task, int(skipped))
        assert task is not None and task.n_annotations == 0
    assert len(ws.labels_of("ann", pid)) == 5


# --------------------------------------------------------------------------- boxes
def make_image(media: Path, name: str) -> str:
    media.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (200, 150), (245, 245, 240))
    draw = ImageDraw.Draw(img)
    draw.rectangle([20, 30, 120, 110], fill=(38, 139, 210))
    draw.ellipse([140, 20, 190, 70], fill=(220, 50, 47))
    img.save(media / name)
    return f"/media/{name}"


def image_point(page: Page, x: float, y: float) -> tuple[float, float]:
    """Screen position of image pixel (x, y) in the labelling screen."""
    box = page.locator("svg.overlay").bounding_box()
    assert box is not None
    return box["x"] + x * box["width"] / 200, box["y"] + y * box["height"] / 150


def test_draw_resize_relabel_and_delete_boxes(
    page: Page, live_server: str, live_server_db: str, ws: Workspace, screenshot: Shot
) -> None:
    path = make_image(Path(live_server_db.removeprefix("sqlite:///")).parent / "media", "shapes.png")
    ws.user("ann", "annotator")
    pid = ws.project("Shapes", {"kind": "boxes", "labels": ["circle", "square"], "input": "image"},
                     [{"id": "img1", "image": path}], members={"ann": "annotator"})
    with ws.db.transaction() as s:  # a model pre-label: a wrong circle, to be deleted
        item_id = s.execute(select(Task.item_id).where(Task.project_id == pid)).scalar_one()
        s.add(Prediction(project_id=pid, item_id=item_id, model_name="detector", model_version="1",
                         value=[{"x": 140, "y": 20, "w": 50, "h": 50, "label": "circle"},
                                {"x": 10, "y": 100, "w": 20, "h": 20, "label": "circle"}]))
    sign_in(page, live_server, "ann")
    wait_ready(page)
    expect(page.locator(".viewport")).to_have_attribute("data-loaded", "1")
    expect(page.locator(".shape.suggested")).to_have_count(2)
    screenshot(page, "label-boxes")

    # draw a box around the square: drag from (25, 35) to (80, 90) in image pixels
    page.mouse.move(*image_point(page, 25, 35))
    page.mouse.down()
    page.mouse.move(*image_point(page, 80, 90), steps=6)
    page.mouse.up()
    expect(page.locator(".shape-list li")).to_have_count(3)
    # resize it from its bottom-right corner to (120, 110)
    page.mouse.move(*image_point(page, 80, 90))
    page.mouse.down()
    page.mouse.move(*image_point(page, 120, 110), steps=6)
    page.mouse.up()
    page.keyboard.press("2")  # relabel the selected box: square
    # select the second suggestion (the spurious one) with the keyboard and delete it
    page.keyboard.press("Escape")
    page.keyboard.press("]")
    page.keyboard.press("]")
    page.keyboard.press("Delete")
    expect(page.locator(".shape-list li")).to_have_count(2)
    page.keyboard.press("+")
    expect(page.locator(".zoom-level")).to_have_text("125%")
    page.keyboard.press("-")
    screenshot(page, "label-boxes-drawn")
    press_and_wait_next(page, "Enter")
    wait_saved(page)

    [value] = ws.labels_of("ann", pid)
    boxes = sorted(value, key=lambda b: b["x"])
    assert [b["label"] for b in boxes] == ["square", "circle"]
    assert boxes[0] == {"x": pytest.approx(25, abs=1.5), "y": pytest.approx(35, abs=1.5),
                        "w": pytest.approx(95, abs=1.5), "h": pytest.approx(75, abs=1.5), "label": "square"}
    assert boxes[1] == {"x": 140, "y": 20, "w": 50, "h": 50, "label": "circle"}  # the kept suggestion


# --------------------------------------------------------------------------- spans
def test_mark_a_span_and_change_its_label(page: Page, live_server: str, ws: Workspace, screenshot: Shot) -> None:
    ws.user("ann", "annotator")
    text = "Alice flew from Paris to Berlin on Monday."
    pid = ws.project("Entities", {"kind": "spans", "labels": ["person", "place"]},
                     [{"id": "s1", "text": text}], members={"ann": "annotator"})
    sign_in(page, live_server, "ann")
    wait_ready(page)
    text_box = page.locator(".span-text")

    def select_chars(start: int, end: int) -> None:
        # a mouse selection of characters start..end of the text, then the mouse button goes up
        text_box.evaluate(
            """(el, [a, b]) => {
                const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT), r = document.createRange();
                let seen = 0, node, started = false;
                while ((node = walker.nextNode())) {
                    const n = node.length;
                    if (!started && a <= seen + n) { r.setStart(node, a - seen); started = true; }
                    if (started && b <= seen + n) { r.setEnd(node, b - seen); break; }
                    seen += n;
                }
                const sel = getSelection(); sel.removeAllRanges(); sel.addRange(r);
                el.dispatchEvent(new MouseEvent("mouseup", {bubbles: true}));
            }""",
            [start, end],
        )

    select_chars(text.index("Paris"), text.index("Paris") + len("Paris") + 1)  # trailing space is trimmed
    expect(page.locator(".span-list li")).to_have_count(1)
    page.keyboard.press("2")  # relabel the selected span: place
    page.keyboard.press("Escape")
    page.keyboard.press("1")  # current label: person
    page.mouse.click(10, 10)
    select_chars(0, len("Alice"))
    expect(page.locator(".span-text mark")).to_have_count(2)
    alice = page.locator(".span-list li", has_text="Alice").get_by_role("combobox")
    alice.select_option("place")  # edit with the list too ...
    alice.select_option("person")  # ... and back
    screenshot(page, "label-spans")
    select_chars(text.index("Berlin"), text.index("Berlin") + len("Berlin"))
    page.keyboard.press("Delete")  # remove the one just marked
    press_and_wait_next(page, "Enter")
    wait_saved(page)

    [value] = ws.labels_of("ann", pid)
    assert sorted(value, key=lambda s: s["start"]) == [
        {"start": 0, "end": 5, "label": "person"},
        {"start": text.index("Paris"), "end": text.index("Paris") + 5, "label": "place"},
    ]


# --------------------------------------------------------------------------- review
def test_review_a_disagreement_by_keyboard(page: Page, live_server: str, ws: Workspace, screenshot: Shot) -> None:
    for name in ("ann", "bob"):
        ws.user(name, "annotator")
    ws.user("rita", "reviewer")
    pid = ws.project("Sentiment", SENTIMENT, TEXTS[:2], overlap=2,
                     members={"ann": "annotator", "bob": "annotator", "rita": "reviewer"})
    for name, label in (("ann", "positive"), ("bob", "negative")):
        task = task_service.next_task(ws.db, ws.users[name], pid)
        assert task is not None
        task_service.submit_annotation(ws.db, ws.users[name], task["task_id"], label)
    sign_in(page, live_server, "rita")
    page.goto(f"{live_server}/projects/{pid}/review")
    expect(page.get_by_role("cell", name="positive")).to_be_visible()
    expect(page.get_by_role("cell", name="negative")).to_be_visible()
    expect(page.locator(".confidence")).to_have_text("50% confidence")
    screenshot(page, "review")
    page.keyboard.press("2")  # correct to the second label: negative
    expect(page.get_by_role("status")).to_have_text("Saved: correct.")
    expect(page.get_by_text("Nothing waiting for review")).to_be_visible()

    with ws.db.transaction(write=False) as s:
        review = s.execute(select(Review)).scalar_one()
        assert (review.verdict, review.value) == ("correct", "negative")
        assert s.get(Consensus, review.task_id).label == "negative"  # type: ignore[union-attr]
        assert s.get(Task, review.task_id).status == "reviewed"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- label issues
def test_fix_a_suspect_item_with_one_key(page: Page, live_server: str, ws: Workspace, screenshot: Shot) -> None:
    ws.user("ann", "annotator")
    pid = ws.project("Sentiment", SENTIMENT, TEXTS[:3], members={"ann": "annotator"})
    for _ in range(3):
        task = task_service.next_task(ws.db, ws.users["ann"], pid)
        assert task is not None
        task_service.submit_annotation(ws.db, ws.users["ann"], task["task_id"], "positive")
    with ws.db.transaction() as s:  # what the label-issue check would leave behind
        tasks = list(s.execute(select(Task).where(Task.project_id == pid).order_by(Task.id)).scalars())
        for task, score in zip(tasks[:2], (0.05, 0.3), strict=True):
            task.flagged, task.issue_score, task.suggested = True, score, "negative"
        suspect_id, other_id = tasks[0].id, tasks[1].id
    sign_in(page, live_server, "boss")
    page.goto(f"{live_server}/projects/{pid}/issues")
    expect(page.locator("table.issues tbody tr")).to_have_count(2)
    screenshot(page, "label-issues")
    page.keyboard.press("f")  # fix the most suspect item to the suggestion
    expect(page.get_by_role("status")).to_have_text("Saved: fix.")
    page.wait_for_load_state()  # the page came back after the form post; its key handler is a module
    page.keyboard.press("k")  # keep the given label of the next one
    expect(page.get_by_text("No suspect items")).to_be_visible()

    with ws.db.transaction(write=False) as s:
        assert s.get(Consensus, suspect_id).label == "negative"  # type: ignore[union-attr]
        assert s.get(Consensus, other_id).label == "positive"  # type: ignore[union-attr]
        assert not any(s.execute(select(Task.flagged).where(Task.project_id == pid)).scalars())


# --------------------------------------------------------------------------- project creation
def test_create_a_project_with_the_schema_editor(
    page: Page, live_server: str, ws: Workspace, screenshot: Shot
) -> None:
    sign_in(page, live_server, "boss")
    page.goto(f"{live_server}/projects/new")
    page.get_by_label("Name", exact=True).fill("Toxicity")
    page.get_by_label("Kind of label").select_option("multilabel")
    page.get_by_label("Annotators per item (overlap)").fill("3")
    page.get_by_label("Gold rate (0 to 1)").fill("0.1")
    for i, name in enumerate(["insult", "threat", "spam"], start=1):
        page.get_by_label(f"Label {i} name").fill(name)
    page.get_by_label("Label 3 hotkey").fill("s")
    page.get_by_label("Label 1 colour").fill("#aa0000")
    page.get_by_role("button", name="Add a label").click()
    page.get_by_label("Label 5 name").fill("other")
    page.get_by_label("Instructions").fill("Mark **every** kind of abuse.\n\n- insults\n- threats")
    screenshot(page, "project-new")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="Toxicity", level=1)).to_be_visible()

    [project] = [p for p in project_service.list_projects(ws.db, ws.users["boss"]) if p["name"] == "Toxicity"]
    assert project["overlap"] == 3 and project["gold_rate"] == pytest.approx(0.1)
    schema = project["schema"]
    assert schema["kind"] == "multilabel"
    assert schema["labels"] == ["insult", "threat", "spam", "other"]
    assert schema["hotkeys"]["spam"] == "s" and schema["colors"]["insult"] == "#aa0000"
    assert schema["instructions"].startswith("Mark **every**")


# --------------------------------------------------------------------------- the other kinds
OTHER_KINDS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("multilabel", {"kind": "multilabel", "labels": ["red", "round", "small"]}, {"text": "a cherry"}),
    ("rating", {"kind": "rating", "min": 1, "max": 5}, {"text": "How clear is this sentence?"}),
    ("pairwise", {"kind": "pairwise"}, {"prompt": "Say hello", "left": "Hello!", "right": "Go away."}),
    ("text", {"kind": "text"}, {"text": "Translate: bonjour"}),
    ("polygons", {"kind": "polygons", "labels": ["blob"]}, {"image": "/media/poly.png"}),
    ("keypoints", {"kind": "keypoints", "labels": ["left eye", "right eye"]}, {"image": "/media/poly.png", "n": 1}),
    ("ranking", {"kind": "ranking", "n": 3}, {"prompt": "Best summary?", "outputs": ["short", "long", "wrong"]}),
]


def test_every_other_kind_can_be_labelled(
    page: Page, live_server: str, live_server_db: str, ws: Workspace, screenshot: Shot
) -> None:
    make_image(Path(live_server_db.removeprefix("sqlite:///")).parent / "media", "poly.png")
    ws.user("ann", "annotator")
    ids = {kind: ws.project(kind, schema, [item], members={"ann": "annotator"})
           for kind, schema, item in OTHER_KINDS}
    sign_in(page, live_server, "ann")

    def open_kind(kind: str) -> None:
        page.goto(f"{live_server}/projects/{ids[kind]}/label")
        wait_ready(page)

    open_kind("multilabel")
    page.keyboard.press("1")
    page.keyboard.press("2")
    page.keyboard.press("2")
    page.keyboard.press("3")
    screenshot(page, "label-multilabel")
    press_and_wait_next(page, "Enter")

    wait_saved(page)
    open_kind("rating")
    screenshot(page, "label-rating")
    press_and_wait_next(page, "4")

    wait_saved(page)
    open_kind("pairwise")
    screenshot(page, "label-pairwise")
    press_and_wait_next(page, "ArrowRight")

    wait_saved(page)
    open_kind("text")
    page.get_by_label("Your answer").fill("hello")
    screenshot(page, "label-text")
    press_and_wait_next(page, "Control+Enter")

    wait_saved(page)
    open_kind("polygons")
    expect(page.locator(".viewport")).to_have_attribute("data-loaded", "1")
    for x, y in ((30, 30), (110, 40), (90, 120)):
        page.mouse.click(*image_point(page, x, y))
    page.keyboard.press("Enter")  # closes the polygon
    expect(page.locator(".shape-list li")).to_have_count(1)
    screenshot(page, "label-polygons")
    press_and_wait_next(page, "Enter")  # submits
    wait_saved(page)

    wait_saved(page)
    open_kind("keypoints")
    expect(page.locator(".viewport")).to_have_attribute("data-loaded", "1")
    page.mouse.click(*image_point(page, 40, 50))
    page.keyboard.press("2")  # relabel the point just placed (still selected): right eye
    page.keyboard.press("Escape")
    page.mouse.click(*image_point(page, 160, 45))
    page.keyboard.press("ArrowRight")  # nudge the selected point one pixel (it has the current label, left eye)
    screenshot(page, "label-keypoints")
    press_and_wait_next(page, "Enter")

    wait_saved(page)
    open_kind("ranking")
    page.keyboard.press("1")
    page.keyboard.press("3")
    page.keyboard.press("Backspace")  # take back "wrong"
    page.keyboard.press("2")  # the last one falls into place
    screenshot(page, "label-ranking")
    press_and_wait_next(page, "Enter")
    wait_saved(page)

    assert ws.labels_of("ann", ids["ranking"]) == [[0, 1, 2]]
    [points] = ws.labels_of("ann", ids["keypoints"])
    assert points == [{"x": pytest.approx(40, abs=1.5), "y": pytest.approx(50, abs=1.5), "label": "right eye"},
                      {"x": pytest.approx(161, abs=1.5), "y": pytest.approx(45, abs=1.5), "label": "left eye"}]
    assert ws.labels_of("ann", ids["multilabel"]) == [["red", "small"]]
    assert ws.labels_of("ann", ids["rating"]) == [4]
    assert ws.labels_of("ann", ids["pairwise"]) == ["right"]
    assert ws.labels_of("ann", ids["text"]) == ["hello"]
    [[polygon]] = ws.labels_of("ann", ids["polygons"])
    assert polygon["label"] == "blob"
    assert polygon["points"] == [[pytest.approx(x, abs=1.5), pytest.approx(y, abs=1.5)]
                                 for x, y in ((30, 30), (110, 40), (90, 120))]


# --------------------------------------------------------------------------- the demo, offline
def test_demo_lands_on_a_dashboard_with_data_and_loads_nothing_from_outside(
    page: Page, live_server: str, live_server_db: str, page_requests: list[str],
    assert_requests_local: Callable[[], None], screenshot: Shot,
) -> None:
    db = Database(live_server_db)
    try:
        build_demo(db, media_dir=Path(live_server_db.removeprefix("sqlite:///")).parent / "media")
    finally:
        db.dispose()
    page.goto(f"{live_server}/login")
    page.get_by_label("User name").fill("demo")
    page.get_by_label("Password").fill("demo")
    page.get_by_label("Password").press("Enter")
    expect(page).to_have_url(re.compile(r"/projects/\d+/dashboard$"))
    tiles = page.get_by_role("region", name="Key figures")
    expect(tiles).to_contain_text("300 items")
    expect(page.locator("svg.chart")).not_to_have_count(0)
    expect(page.get_by_role("row", name=re.compile("^alice"))).to_be_visible()
    screenshot(page, "dashboard")

    pid = page.url.rsplit("/", 2)[-2]
    page.goto(f"{live_server}/projects/{pid}/decisions")
    expect(page.get_by_role("heading", name="Decision queue")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Probability \(calibrated, T = \d\.\d\d\)"))).to_be_visible()
    policy = page.get_by_role("region", name="Policy")
    expect(policy).to_contain_text("accepted without review")
    expect(policy.locator("svg.chart")).to_have_count(2)
    screenshot(page, "decisions")
    for path in ("/", f"/projects/{pid}/label", f"/projects/{pid}/review", f"/projects/{pid}/issues",
                 "/projects/new", "/projects/2/label", "/projects/2/dashboard"):
        page.goto(f"{live_server}{path}")
        page.wait_for_load_state("networkidle")
    assert_requests_local()
    fetched = {r.split("?")[0].removeprefix(live_server) for r in page_requests}
    assert {"/static/veracity.css", "/static/label.js", "/static/image.js", "/static/hotkeys.js"} <= fetched
    assert any(r.startswith("/media/demo/") for r in fetched)


# --------------------------------------------------------------------------- tablet width
def test_screens_fit_a_tablet_and_keep_a_visible_focus(
    page: Page, live_server: str, live_server_db: str, ws: Workspace, screenshot: Shot
) -> None:
    path = make_image(Path(live_server_db.removeprefix("sqlite:///")).parent / "media", "tablet.png")
    ws.user("ann", "annotator")
    pid = ws.project("Shapes", {"kind": "boxes", "labels": ["circle", "square"]}, [{"image": path}],
                     members={"ann": "annotator"})
    page.set_viewport_size({"width": 820, "height": 1180})
    sign_in(page, live_server, "boss")
    for screen in ("dashboard", "review", "issues", "label"):
        page.goto(f"{live_server}/projects/{pid}/{screen}")
        page.wait_for_load_state()
        overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{screen}: {overflow}px wider than the tablet screen"
    wait_ready(page)
    expect(page.locator(".viewport")).to_have_attribute("data-loaded", "1")
    screenshot(page, "label-boxes-tablet")
    # a box without the mouse: N places one, Shift+arrows resize it, a number relabels it
    page.keyboard.press("n")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("2")
    press_and_wait_next(page, "Enter")
    wait_saved(page)
    assert ws.labels_of("boss", pid) == [[{"x": 81, "y": 57, "w": 48, "h": 38, "label": "square"}]]
    # keyboard users see where they are: Tab reaches the skip link first, with a focus outline
    page.goto(f"{live_server}/projects/{pid}/dashboard")
    page.keyboard.press("Tab")
    focused = page.evaluate("(el => [el.textContent, getComputedStyle(el).outlineStyle])(document.activeElement)")
    assert focused == ["Skip to content", "solid"]


def test_review_boxes_side_by_side_and_take_one_annotators_boxes(
    page: Page, live_server: str, live_server_db: str, ws: Workspace, screenshot: Shot
) -> None:
    path = make_image(Path(live_server_db.removeprefix("sqlite:///")).parent / "media", "review.png")
    for name in ("ann", "bob"):
        ws.user(name, "annotator")
    pid = ws.project("Shapes", {"kind": "boxes", "labels": ["circle", "square"]}, [{"image": path}], overlap=2,
                     members={"ann": "annotator", "bob": "annotator"})
    answers = {"ann": [{"x": 20, "y": 30, "w": 100, "h": 80, "label": "square"}],
               "bob": [{"x": 20, "y": 30, "w": 100, "h": 80, "label": "circle"},
                       {"x": 140, "y": 20, "w": 50, "h": 50, "label": "circle"}]}
    for name, value in answers.items():
        task = task_service.next_task(ws.db, ws.users[name], pid)
        assert task is not None
        task_service.submit_annotation(ws.db, ws.users[name], task["task_id"], value)
    with ws.db.transaction() as s:  # sent to review (what an uncertain task at max_labels gets)
        task_row = s.execute(select(Task).where(Task.project_id == pid)).scalar_one()
        task_row.status = "review"
        task_id = task_row.id
    sign_in(page, live_server, "boss")
    page.goto(f"{live_server}/projects/{pid}/review")
    expect(page.locator("figure.shape-preview")).to_have_count(2)
    expect(page.locator("figure.shape-preview svg rect")).to_have_count(3)
    screenshot(page, "review-boxes")
    page.keyboard.press("1")  # take ann's boxes as the correction
    expect(page.get_by_role("status")).to_have_text("Saved: correct.")
    with ws.db.transaction(write=False) as s:
        assert s.get(Consensus, task_id).label == answers["ann"]  # type: ignore[union-attr]


# --------------------------------------------------------------------------- failures while labelling
def test_an_answer_the_server_refused_stays_on_screen_to_send_again(
    page: Page, live_server: str, ws: Workspace
) -> None:
    ws.user("ann", "annotator")
    pid = ws.project("Translate", {"kind": "text"}, [{"text": f"phrase {i}"} for i in range(3)],
                     members={"ann": "annotator"})
    sign_in(page, live_server, "ann")
    first = wait_ready(page)
    wait_saved(page)
    page.route("**/submit", lambda route: route.fulfill(status=500, body="boom"))
    page.get_by_label("Your answer").fill("a long, careful answer")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#status")).to_contain_text("Not saved")
    expect(page.locator("body")).to_have_attribute("data-task-id", first)
    expect(page.get_by_label("Your answer")).to_have_value("a long, careful answer")  # not typed again
    expect(page.locator("#counter")).to_have_text("0 labelled this session")
    page.unroute("**/submit")
    press_and_wait_next(page, "Control+Enter")
    wait_saved(page)
    assert ws.labels_of("ann", pid) == ["a long, careful answer"]


def test_an_expired_lease_moves_on_instead_of_failing_again_and_again(
    page: Page, live_server_db: str, ws: Workspace, tmp_path: Path
) -> None:
    server = start_server(live_server_db, tmp_path, env={"VERACITY_LEASE_SECONDS": "3"})
    try:
        ws.user("ann", "annotator")
        pid = ws.project("Sentiment", SENTIMENT, TEXTS, members={"ann": "annotator"})
        sign_in(page, server.base_url, "ann")
        shown = {wait_ready(page)}
        wait_saved(page)  # the item on show and the one leased ahead
        time.sleep(3.5)  # a coffee break: both leases run out
        for _ in range(2):
            shown.add(press_and_wait_next(page, "1"))
            expect(page.locator("#status")).to_contain_text("went back to the queue")
            wait_saved(page)
        assert len(shown) == 3  # each refused item left the screen; a fresh one came
        expect(page.locator("#counter")).to_have_text("0 labelled this session")
        press_and_wait_next(page, "2")
        wait_saved(page)
        assert ws.labels_of("ann", pid) == ["negative"]
    finally:
        server.stop()


def test_a_double_click_answers_one_item_only(page: Page, live_server: str, ws: Workspace) -> None:
    ws.user("ann", "annotator")
    text_pid = ws.project("Translate", {"kind": "text"}, [{"text": f"phrase {i}"} for i in range(3)],
                          members={"ann": "annotator"})
    choice_pid = ws.project("Sentiment", SENTIMENT, TEXTS, members={"ann": "annotator"})
    sign_in(page, live_server, "ann")
    page.goto(f"{live_server}/projects/{text_pid}/label")
    wait_ready(page)
    wait_saved(page)  # the next item is already on hand, so the second click would land on it
    page.get_by_label("Your answer").fill("hello")
    page.get_by_role("button", name="Submit").dblclick()
    wait_saved(page)
    assert ws.labels_of("ann", text_pid) == ["hello"]  # not also "" for the next item
    page.goto(f"{live_server}/projects/{choice_pid}/label")
    wait_ready(page)
    wait_saved(page)
    page.get_by_role("button", name="positive").dblclick()
    wait_saved(page)
    assert ws.labels_of("ann", choice_pid) == ["positive"]


# --------------------------------------------------------------------------- phone width, awkward data
def test_a_phone_shows_long_words_wide_tables_and_right_to_left_text_without_sideways_scrolling(
    page: Page, live_server: str, ws: Workspace
) -> None:
    ws.user("ann", "annotator")
    items = [{"id": "long", "text": "https://example.org/" + "a1b2c3d4" * 300},
             {"id": "rtl", "text": "مرحبا بالعالم، هذا نص عربي."}]
    pid = ws.project("Sentiment of customer reviews for the kitchen appliances range", SENTIMENT, items,
                     members={"ann": "annotator"})
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server, "boss")
    for path in ("/", "/datasets", f"/projects/{pid}/label"):
        page.goto(f"{live_server}{path}")
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path}: {overflow}px wider than a phone"
    wait_ready(page)
    expect(page.locator(".item-id")).to_contain_text("long")
    press_and_wait_next(page, "1")
    expect(page.locator(".item-id")).to_contain_text("rtl")
    # Arabic reads from the right: the paragraph takes its direction from its text
    assert page.locator(".item-text").evaluate("el => getComputedStyle(el).direction") == "rtl"
