"""The sample workspace of ``veracity demo``: users, a text project and an image project with labels.

Everything is generated here from fixed word lists and a fixed seed (no downloads): 300 short
product reviews with a known sentiment, and 36 images of coloured shapes drawn with Pillow with
their true boxes loaded as model pre-labels. Simulated annotators of different skill label part
of each project through the same services the API uses, so the dashboards have data to show;
a simulated model's probabilities then feed the label-issue and decision screens.
Every demo user's password is ``demo``.
Building is idempotent: a second run finds the projects and changes nothing.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, select

from veracity.errors import ConflictError
from veracity.services import decisions as decision_service
from veracity.services import items as item_service
from veracity.services import projects as project_service
from veracity.services import quality as quality_service
from veracity.services import tasks as task_service
from veracity.services import users as user_service
from veracity.services.actors import Actor
from veracity.storage import Database
from veracity.storage.models import Item, Prediction, Project, User

__all__ = ["DemoSummary", "build_demo", "demo_texts"]

TEXT_PROJECT = "Demo: review sentiment"
IMAGE_PROJECT = "Demo: shapes"
ADMIN, ADMIN_PASSWORD = "demo", "demo"
# name, role, accuracy of the simulated labels
PEOPLE = [("alice", "annotator", 0.92), ("bob", "annotator", 0.80), ("carol", "annotator", 0.65),
          ("dave", "annotator", 0.40), ("rita", "reviewer", 0.95)]

_PRODUCTS = ["blender", "headphones", "backpack", "kettle", "lamp", "keyboard", "tent", "camera", "jacket", "drill"]
_PHRASES = {
    "positive": ["works perfectly", "is excellent value", "exceeded my expectations", "is sturdy and well made",
                 "arrived early and works great", "is the best I have owned"],
    "negative": ["broke after two days", "is a waste of money", "stopped working within a week",
                 "feels cheap and flimsy", "arrived damaged", "is far too noisy"],
    "neutral": ["is fine for the price", "does what it says", "is about what I expected",
                "is okay, nothing special", "arrived on time", "is average overall"],
}
_OPENERS = ["The", "This", "My new", "Our", "The second"]
_CLOSERS = ["", " Would buy again.", " Not sure yet.", " Returned it.", " Five stars.", " Meh."]
SENTIMENTS = ["positive", "negative", "neutral"]
SHAPES = ["circle", "square", "triangle"]


@dataclass
class DemoSummary:
    login: str = ADMIN
    password: str = ADMIN_PASSWORD
    created: bool = False
    projects: list[str] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        state = "Created" if self.created else "Found existing"
        return [f"{state} sample workspace: {', '.join(self.projects)}"]


def demo_texts(n: int = 300, seed: int = 7) -> list[tuple[str, str]]:
    """``n`` distinct (text, true sentiment) pairs from fixed phrase lists."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    while len(out) < n:
        label = rng.choice(SENTIMENTS)
        text = (f"{rng.choice(_OPENERS)} {rng.choice(_PRODUCTS)} {rng.choice(_PHRASES[label])}."
                f"{rng.choice(_CLOSERS)}")
        if text not in seen:
            seen.add(text)
            out.append((text, label))
    return out


def _draw_shapes(media_dir: Path, n: int = 36, seed: int = 11) -> list[tuple[str, list[dict[str, object]]]]:
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    folder = media_dir / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    colours = [(220, 50, 47), (38, 139, 210), (133, 153, 0), (181, 137, 0), (108, 113, 196)]
    out = []
    for i in range(n):
        img = Image.new("RGB", (320, 240), (245, 245, 240))
        draw = ImageDraw.Draw(img)
        boxes: list[dict[str, object]] = []
        for _ in range(rng.randint(1, 3)):
            shape = rng.choice(SHAPES)
            w = h = rng.randint(30, 80)
            x, y = rng.randint(0, 320 - w), rng.randint(0, 240 - h)
            colour = rng.choice(colours)
            if shape == "circle":
                draw.ellipse([x, y, x + w, y + h], fill=colour)
            elif shape == "square":
                draw.rectangle([x, y, x + w, y + h], fill=colour)
            else:
                draw.polygon([(x + w / 2, y), (x, y + h), (x + w, y + h)], fill=colour)
            boxes.append({"x": x, "y": y, "w": w, "h": h, "label": shape})
        name = f"shapes_{i:03d}.png"
        img.save(folder / name)
        out.append((f"/media/demo/{name}", boxes))
    return out


def _simulate(db: Database, actor: Actor, project_id: int, truth: dict[int, object], accuracy: float,
              labels: list[str], rng: random.Random, limit: int) -> None:
    for _ in range(limit):
        task = task_service.next_task(db, actor, project_id)
        if task is None:
            return
        true = truth[task["item"]["id"]]
        if isinstance(true, str):
            value: object = true if rng.random() < accuracy else rng.choice([x for x in labels if x != true])
        else:  # boxes: jitter the true boxes, sometimes mislabel one
            value = [
                {**b, "x": max(0, b["x"] + rng.randint(-4, 4)), "y": max(0, b["y"] + rng.randint(-4, 4)),
                 "label": b["label"] if rng.random() < accuracy else rng.choice(labels)}
                for b in true  # type: ignore[attr-defined]
            ]
        task_service.submit_annotation(db, actor, task["task_id"], value, duration_ms=rng.randint(900, 6000))


def build_demo(db: Database, *, media_dir: Path) -> DemoSummary:
    """Create the sample workspace unless it exists; return what is there and how to sign in."""
    summary = DemoSummary(projects=[TEXT_PROJECT, IMAGE_PROJECT])
    with db.transaction(write=False) as s:
        exists = s.execute(select(Project.id).where(Project.name == TEXT_PROJECT)).scalar_one_or_none()
        has_admin = s.execute(select(User.id).where(User.name == ADMIN)).scalar_one_or_none()
    if exists is not None:
        return summary
    summary.created = True
    if has_admin is None:
        user_service.create_user(db, ADMIN, "admin", password=ADMIN_PASSWORD, clearance=9)
    admin = user_service.authenticate_password(db, ADMIN, ADMIN_PASSWORD)
    actors: dict[str, tuple[Actor, float]] = {}
    for name, role, acc in PEOPLE:
        with contextlib.suppress(ConflictError):
            user_service.create_user(db, name, role, password=ADMIN_PASSWORD, clearance=1, actor=admin)
        actors[name] = (user_service.authenticate_password(db, name, ADMIN_PASSWORD), acc)

    text = project_service.create_project(
        db, admin, name=TEXT_PROJECT, overlap=3,
        schema={"kind": "classification", "labels": SENTIMENTS, "input": "text",
                "instructions": "Choose the sentiment the **reviewer** expresses about the product.",
                "hotkeys": {"positive": "1", "negative": "2", "neutral": "3"}},
        description="Short product reviews; three annotators per review.",
    )
    samples = demo_texts()
    res = project_service.import_items(db, admin, text.id, [{"id": f"r{i:03d}", "text": t} for i, (t, _) in
                                                            enumerate(samples)], source="demo")
    truth: dict[int, object] = {iid: lab for iid, (_, lab) in zip(res.item_ids, samples, strict=True)}

    shapes = _draw_shapes(media_dir)
    image = project_service.create_project(
        db, admin, name=IMAGE_PROJECT, overlap=2,
        schema={"kind": "boxes", "labels": SHAPES, "input": "image",
                "instructions": "Draw a box around every shape and name it."},
        description="Generated images of coloured shapes; the model's boxes are shown as suggestions.",
    )
    res_img = project_service.import_items(db, admin, image.id,
                                           [{"id": f"img{i:03d}", "image": path} for i, (path, _) in
                                            enumerate(shapes)], source="demo")
    img_truth: dict[int, object] = {iid: boxes for iid, (_, boxes) in zip(res_img.item_ids, shapes, strict=True)}
    with db.transaction() as s:
        s.execute(insert(Prediction), [
            {"project_id": image.id, "item_id": iid, "model_name": "shape-detector", "model_version": "demo-1",
             "value": boxes, "probabilities": None}
            for iid, boxes in img_truth.items()
        ])
        total = s.execute(select(Item.id).where(Item.dataset_id == text.dataset_id)).all()
        assert len(total) == len(samples)

    for name in ("alice", "bob", "carol", "dave"):
        project_service.add_member(db, admin, text.id, name, "annotator")
        project_service.add_member(db, admin, image.id, name, "annotator")
    project_service.add_member(db, admin, text.id, "rita", "reviewer")
    project_service.add_member(db, admin, image.id, "rita", "reviewer")
    rng = random.Random(3)
    for name, limit in (("alice", 160), ("bob", 150), ("carol", 120), ("dave", 90)):
        actor, acc = actors[name]
        _simulate(db, actor, text.id, truth, acc, SENTIMENTS, rng, limit)
        _simulate(db, actor, image.id, img_truth, acc, SHAPES, rng, 12)
    _model_outputs(db, admin, text.id, truth)
    return summary


def _model_outputs(db: Database, admin: Actor, project_id: int, truth: dict[int, object]) -> None:
    """A simulated sentiment model: refit the consensus (Dawid-Skene), load the model's probabilities,
    flag suspect labels and route the unlabelled items through a conformal decision policy."""
    import numpy as np

    rng = np.random.default_rng(17)
    records = []
    for item_id, label in truth.items():
        probs = rng.dirichlet([0.6, 0.6, 0.6])
        k = SENTIMENTS.index(str(label)) if rng.random() < 0.85 else int(rng.integers(3))
        probs = 0.35 * probs + 0.65 * np.eye(3)[k]
        records.append({"item_id": item_id, "probabilities": (probs / probs.sum()).round(4).tolist()})
    quality_service.refit_project(db, project_id, method="ds")
    item_service.import_predictions(db, admin, project_id, records, model="sentiment-bert", model_version="demo-1")
    quality_service.flag_label_issues(db, admin, project_id)
    decision_service.set_policy(db, admin, project_id, {"coverage": 0.9, "score": "aps", "threshold": 0.8,
                                                       "calibration": "temperature"})
    decision_service.run_decisions(db, admin, project_id, model="sentiment-bert", trusted_confidence=0.8)
