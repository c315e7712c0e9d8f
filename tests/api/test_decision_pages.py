"""The analyst's decision queue page, in-process through httpx on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from veracity.services import decisions as decision_service
from veracity.services import items as item_service
from veracity.services import projects as project_service
from veracity.services import tasks as task_service
from veracity.services.users import authenticate_password, create_user

pytestmark = pytest.mark.anyio
PASSWORD = "pw-1234"


async def test_analyst_overrides_and_accepts_from_the_queue(api: Any) -> None:
    create_user(api.db, "boss", "admin", password=PASSWORD)
    create_user(api.db, "ana", "reviewer", password=PASSWORD)
    boss = authenticate_password(api.db, "boss", PASSWORD)
    p = project_service.create_project(api.db, boss, name="Cars", schema={"kind": "classification",
                                                                          "labels": ["car", "bus"]})
    project_service.add_member(api.db, boss, p.id, "ana", "reviewer")
    project_service.import_items(api.db, boss, p.id, [{"id": f"v{i}", "text": f"vehicle {i}"} for i in range(40)])
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 40)
    probs = [[0.95, 0.05] if t == 0 else [0.05, 0.95] for t in truth]
    probs[30:] = [[0.55, 0.45]] * 10  # the model hesitates on the last ten
    item_service.import_predictions(api.db, boss, p.id, [{"external_id": f"v{i}", "probabilities": probs[i]}
                                                         for i in range(40)], model="m")
    for _ in range(20):
        task = task_service.next_task(api.db, boss, p.id)
        assert task is not None
        i = int(task["item"]["external_id"][1:])
        task_service.submit_annotation(api.db, boss, task["task_id"], ["car", "bus"][truth[i]])
    decision_service.set_policy(api.db, boss, p.id, {"coverage": 0.9, "threshold": 0.9})
    out = decision_service.run_decisions(api.db, boss, p.id, model="m")
    assert out["review"] >= 10

    form = await api.client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    r = await api.client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303
    page = await api.client.get(f"/projects/{p.id}/decisions")
    assert page.status_code == 200 and "Decision queue" in page.text and "Nearest labelled examples" in page.text
    assert "calibrated, T =" not in page.text  # the policy takes the model's probabilities as they are
    policy = page.text[page.text.index('id="policy-h"'):]
    assert "accepted without review when its probability is at least 0.90" in policy
    est = out["estimate"]
    assert f"<strong>{100 * est['automation_rate']:.0f}%</strong> of items accepted without review" in policy
    assert policy.count('<svg class="chart line"') == 2  # the risk-coverage curve: share accepted, error
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    first = re.search(r'action="/projects/\d+/decisions/(\d+)"', page.text).group(1)  # type: ignore[union-attr]
    r = await api.client.post(f"/projects/{p.id}/decisions/{first}", data={"choice": "override:bus",
                                                                           "csrf_token": csrf})
    assert r.status_code == 422 and "reason" in r.text  # an override needs a reason
    # said on the queue itself, next to the same decision's form, not on a bare error page
    assert 'role="alert">Not saved: reason: an override needs a reason' in r.text
    assert f'action="/projects/{p.id}/decisions/{first}"' in r.text and 'aria-invalid="true"' in r.text
    r = await api.client.post(f"/projects/{p.id}/decisions/{first}", data={"choice": "override:truck",
                                                                           "reason": "six <wheels>",
                                                                           "csrf_token": csrf})
    assert r.status_code == 422 and 'value="six &lt;wheels&gt;"' in r.text  # what was typed is kept, escaped
    r = await api.client.post(f"/projects/{p.id}/decisions/{first}", data={"choice": "override:bus",
                                                                           "reason": "two decks", "csrf_token": csrf})
    assert r.status_code == 303 and "override" in r.headers["location"]
    r = await api.client.post(f"/projects/{p.id}/decisions/{first}", data={"choice": "accept:car",
                                                                           "csrf_token": "forged"})
    assert r.status_code == 403
    queue = decision_service.decision_queue(api.db, boss, p.id)
    assert len(queue) == out["review"] - 1 and all(str(d["id"]) != first for d in queue)


async def test_queue_shows_the_recalibrated_probabilities(api: Any) -> None:
    create_user(api.db, "boss", "admin", password=PASSWORD)
    boss = authenticate_password(api.db, "boss", PASSWORD)
    p = project_service.create_project(api.db, boss, name="Vans", schema={"kind": "classification",
                                                                         "labels": ["car", "bus"]})
    project_service.import_items(api.db, boss, p.id, [{"id": f"v{i}", "text": f"vehicle {i}"} for i in range(40)])
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 40)
    said = np.where(rng.random(40) < 0.75, truth, 1 - truth)  # says 0.95 and is right 75% of the time
    item_service.import_predictions(api.db, boss, p.id, [
        {"external_id": f"v{i}", "probabilities": [0.95, 0.05] if said[i] == 0 else [0.05, 0.95]} for i in range(40)
    ], model="m")
    for _ in range(30):
        task = task_service.next_task(api.db, boss, p.id)
        assert task is not None
        i = int(task["item"]["external_id"][1:])
        task_service.submit_annotation(api.db, boss, task["task_id"], ["car", "bus"][truth[i]])
    decision_service.set_policy(api.db, boss, p.id, {"coverage": 0.8, "threshold": 0.9, "calibration": "temperature"})
    out = decision_service.run_decisions(api.db, boss, p.id, model="m")
    assert out["review"] == 10
    form = await api.client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    await api.client.post("/login", data={"username": "boss", "password": PASSWORD, "csrf_token": token})
    page = (await api.client.get(f"/projects/{p.id}/decisions")).text
    t = out["estimate"]["temperature"]
    assert f"(calibrated, T = {t:.2f})" in page and t > 1
    shown = [float(v) for v in re.findall(r"</span> (0\.\d{3})</td>", page)]
    assert len(shown) == 2 and max(shown) < 0.9  # 0.950 before recalibration
