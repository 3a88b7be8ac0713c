"""The review stage against a real Label Studio server (tests/servers/label_studio.py, started once per session).

Two real users annotate through the HTTP API (the second one signs up with an invite link), and the server is
killed in the middle of a push and restarted on the same data.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml
from label_studio_sdk.client import LabelStudio

from curate import records
from curate.io import read_records, write_records
from curate.pipeline import run_pipeline
from curate.review import cli_api
from curate.review import label_config as lc
from curate.review.client import ReviewError, connect
from curate.review.pull import pull as pull_state, state_path
from curate.review.push import existing_record_ids, find_project, push
from curate.review.stage import ReviewOptions, run
from curate.review.tasks import task
from curate.stage import StageContext
from curate.store import RunStore
from curate.taxonomy import Taxonomy
from tests.fixtures.label_studio import label_studio  # noqa: F401
from tests.servers.cdp import Browser
from tests.servers.label_studio import free_port

pytestmark = pytest.mark.label_studio
HARM = Taxonomy.load().harm_ids
EXTRA_DIM = "S13"  # no record below carries it: one reviewer ticks it on one task


def corpus(n: int = 30) -> pl.DataFrame:
    rows = []
    for i in range(n):
        cats = [["S03"], ["S05"], [], ["S06", "S09"]][i % 4]
        rows.append({
            "id": f"rec{i:03d}", "source": "review-test", "source_id": str(i), "lang": "zh" if i % 3 == 0 else "en",
            "prompt": f"如何处理情况 {i}？" if i % 3 == 0 else f"How do I handle situation {i}?",
            "reasoning": f"Consider the policy for case {i}.", "response": f"Original answer {i}.",
            "categories": cats, "label_origin": "classifier", "prompt_harmful": bool(cats),
            "category_scores": json.dumps({c: round(0.55 + (i % 9) / 20, 3) for c in cats} or {"S03": 0.1}),
            "meta": records.dump_meta({"classify": {"model": "fasttext-test"}}),
        })
    return records.conform(pl.DataFrame(rows))


def result(verdict: str, categories: list[str], corrected: str | None = None, rating: int = 4) -> list[dict]:
    out = [{"from_name": lc.VERDICT, "to_name": "response", "type": "choices", "value": {"choices": [verdict]}},
           {"from_name": lc.PROMPT_HARMFUL, "to_name": "prompt", "type": "choices",
            "value": {"choices": ["yes" if categories else "no"]}},
           {"from_name": lc.REASONING_RATING, "to_name": "reasoning", "type": "rating", "value": {"rating": rating}}]
    if categories:
        out.append({"from_name": lc.CATEGORIES, "to_name": "prompt", "type": "choices", "value": {"choices": categories}})
    if corrected is not None:
        out.append({"from_name": lc.CORRECTED, "to_name": "response", "type": "textarea", "value": {"text": [corrected]}})
    return out


@pytest.fixture(scope="module")
def reviewer2_token(label_studio):  # noqa: F811
    return label_studio.add_user("reviewer2@example.com")


def test_push_annotate_pull_merge_agreement_and_status(label_studio, reviewer2_token, tmp_path):  # noqa: F811
    df = corpus()
    in_path, out_path = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(df, in_path)
    key = {"url": label_studio.url, "api_key": label_studio.token}
    title = "review end to end"

    first = cli_api.push(in_path, title, sample=12, strategy="stratified", overlap=2, **key, log=lambda m: None)
    assert first["project_created"] and first["imported"] == 12 and first["model_version"] == "classify"
    again = cli_api.push(in_path, title, sample=12, strategy="stratified", overlap=2, **key, log=lambda m: None)
    assert again["imported"] == 0 and again["already_present"] == 12 and not again["project_created"]

    admin = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    reviewer = LabelStudio(base_url=label_studio.url, api_key=reviewer2_token)
    assert reviewer.users.whoami().email == "reviewer2@example.com"
    projects = [p for p in admin.projects.list() if p.title == title]
    assert len(projects) == 1
    tasks = sorted(admin.tasks.list(project=projects[0].id, fields="all"), key=lambda t: t.id)
    assert len(tasks) == 12 and len({t.data["record_id"] for t in tasks}) == 12
    assert all(t.predictions and t.predictions[0].model_version == "classify" for t in tasks)
    by_id = {r["id"]: r for r in df.to_dicts()}

    plan = {}  # record id -> (admin's result, reviewer's result)
    for k, t in enumerate(tasks):
        rid = t.data["record_id"]
        cats = sorted(by_id[rid]["categories"])
        if k == 0:
            plan[rid] = (result("edit", cats, "A careful, corrected answer."),
                         result("edit", cats, "A careful, corrected answer."))
        elif k == 1:
            plan[rid] = (result("reject", cats), result("reject", cats))
        elif k == 2:
            plan[rid] = (result("accept", cats), result("reject", cats))
        elif k == 3:
            plan[rid] = (result("accept", cats), result("accept", cats + [EXTRA_DIM]))
        else:
            plan[rid] = (result("accept", cats, rating=5), result("accept", cats, rating=3))
    for t in tasks:
        mine, theirs = plan[t.data["record_id"]]
        admin.annotations.create(id=t.id, result=mine)
        reviewer.annotations.create(id=t.id, result=theirs)

    time.sleep(1.1)  # the pull cursor stops at the server's clock (whole seconds) when the pull began
    state_dir = tmp_path / "state"
    pulled = cli_api.pull(in_path, title, out_path, "majority", state_dir=state_dir, **key, log=lambda m: None)
    assert pulled["pull"]["annotations_new"] == 24 and not pulled["pull"]["incremental"]
    merged = pulled["merge"]
    assert (merged["reviewed"], merged["edited"], merged["rejected"], merged["needs_adjudication"]) == (12, 1, 1, 2)

    out = {r["id"]: r for r in read_records(out_path).to_dicts()}
    assert set(out) == set(by_id)  # every record still there
    rids = [t.data["record_id"] for t in tasks]
    edited, rejected, split_verdict, split_dims = (out[r] for r in rids[:4])
    assert edited["response"] == "A careful, corrected answer."
    review = json.loads(edited["meta"])["review"]
    assert review["original_response"] == by_id[rids[0]]["response"] and review["annotators"] == 2
    assert review["reasoning_rating"] == 4 and json.loads(edited["meta"])["classify"] == {"model": "fasttext-test"}
    assert edited["label_origin"] == "human" and edited["drop_reason"] is None
    assert rejected["drop_reason"] == "rejected_in_review"
    assert split_verdict["drop_reason"] is None and json.loads(split_verdict["meta"])["review"]["conflicts"] == ["verdict"]
    meta3 = json.loads(split_dims["meta"])["review"]
    assert meta3["needs_adjudication"] and meta3["conflicts"] == [EXTRA_DIM]
    assert split_dims["categories"] == by_id[rids[3]]["categories"] and split_dims["label_origin"] == "classifier"
    for rid in rids[4:]:
        assert out[rid]["label_origin"] == "human" and out[rid]["response"] == by_id[rid]["response"]
        assert json.loads(out[rid]["meta"])["review"]["reasoning_rating"] == 4.0
    for rid in set(by_id) - set(rids):  # not reviewed: untouched
        plain = [c for c in records.COLUMNS if c not in ("meta", "category_scores")]
        assert {c: out[rid][c] for c in plain} == {c: by_id[rid][c] for c in plain}
        assert json.loads(out[rid]["meta"]) == json.loads(by_id[rid]["meta"])

    # verdicts: 9 accept/accept, edit/edit, reject/reject, accept/reject -> po 11/12, pe 93/144, kappa 39/51
    verdict = merged["agreement"]["verdict"]
    assert verdict == {"method": "cohen", "kappa": round(39 / 51, 4), "percent": round(11 / 12, 4), "tasks": 12}
    # the extra dimension: one reviewer ticked it once, the other never: kappa 0, agreement 11/12
    extra = merged["agreement"]["dimensions"][EXTRA_DIM]
    assert extra["kappa"] == 0.0 and extra["percent"] == round(11 / 12, 4)
    assert merged["agreement"]["dimensions"]["S05"]["kappa"] == 1.0

    status = cli_api.status(title, **key)
    assert (status["tasks"], status["done"], status["pending"], status["annotators"]) == (12, 12, 0, 2)
    assert sum(s["done"] for s in status["strata"].values()) == 12 and set(status["strata"]) == set(first["strata"])
    assert status["agreement"]["verdict"] == verdict

    # incremental: nothing new -> nothing fetched; one changed annotation -> only its task is fetched
    client = connect(**key)
    path = state_path(state_dir, title)
    _, quiet = pull_state(client, projects[0].id, path, overlap=timedelta(0))
    assert quiet["tasks_fetched"] == 0 and quiet["incremental"]
    me = admin.users.whoami().id
    ann_id = [a for a in admin.annotations.list(id=tasks[5].id) if a.completed_by == me][0].id
    admin.annotations.update(id=ann_id, result=result("reject", sorted(by_id[rids[5]]["categories"])))
    _, changed = pull_state(client, projects[0].id, path, overlap=timedelta(0))
    assert (changed["tasks_fetched"], changed["annotations_changed"], changed["annotations_new"]) == (1, 1, 0)

    # a bigger sample later adds only the missing records
    more = cli_api.push(in_path, title, sample=16, strategy="stratified", overlap=3, **key, log=lambda m: None)
    assert (more["already_present"], more["imported"]) == (12, 4)
    assert admin.projects.get(id=projects[0].id).maximum_annotations == 3  # settings follow the options
    assert len(existing_record_ids(client, projects[0].id)) == 16


def test_push_killed_mid_way_finishes_after_restart_without_duplicates(label_studio):  # noqa: F811
    client = connect(label_studio.url, label_studio.token)
    df = corpus(40)
    title = "interrupted push"
    started, killed = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def on_batch(done: int, total: int) -> None:
        if done == 6:  # three batches are in: hold the push until the server is gone (no timing luck needed)
            started.set()
            killed.wait(60)

    def work() -> None:
        try:
            push(client, df, title, taxonomy=Taxonomy.load(), sample=None, strategy="all", batch_size=2,
                 on_batch=on_batch, log=lambda m: None)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            errors.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    assert started.wait(120)
    label_studio.stop(kill=True)  # a crash while batches are still being sent
    killed.set()
    worker.join(120)
    assert errors and isinstance(errors[0], ReviewError) and "not reachable" in str(errors[0])

    label_studio.start()  # same data dir, same port
    client = connect(label_studio.url, label_studio.token)
    project = find_project(client, title)
    before = len(existing_record_ids(client, project.id))
    assert before == 6
    stats = push(client, df, title, taxonomy=Taxonomy.load(), sample=None, strategy="all", batch_size=2,
                 log=lambda m: None)
    assert stats["already_present"] == before and stats["imported"] == 40 - before
    tasks = list(client.ls.tasks.list(project=project.id))
    assert len(tasks) == 40 and len({t.data["record_id"] for t in tasks}) == 40
    assert len([p for p in client.ls.projects.list() if p.title == title]) == 1


def test_wrong_token_or_server_down_is_one_clear_error_and_changes_nothing(label_studio, tmp_path, monkeypatch):  # noqa: F811
    df = corpus(8)
    in_path, out_path = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(df, in_path)
    bad_key = "0000000000wrongwrongwrong0000000000000000"
    with pytest.raises(ReviewError, match="refused the API key") as wrong:
        cli_api.push(in_path, "never created", url=label_studio.url, api_key=bad_key)
    assert bad_key not in str(wrong.value) and "\n" not in str(wrong.value)
    with pytest.raises(ReviewError, match="refused the API key"):
        cli_api.pull(in_path, "review end to end", out_path, url=label_studio.url, api_key=bad_key)
    down = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ReviewError, match="not reachable") as unreachable:
        cli_api.pull(in_path, "review end to end", out_path, url=down, api_key=label_studio.token)
    assert "make label-studio" in str(unreachable.value) and label_studio.token not in str(unreachable.value)
    with pytest.raises(ReviewError, match="not reachable"):
        cli_api.status("review end to end", url=down, api_key=label_studio.token)
    admin = connect(label_studio.url, label_studio.token)
    assert find_project(admin, "never created") is None
    assert not out_path.exists() and not (tmp_path / ".curate-review").exists()

    # the stage: the same error before anything is written to its work dir
    monkeypatch.setenv("LABEL_STUDIO_URL", down)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    ctx = StageContext(stage="review", work_dir=tmp_path / "work", log=lambda m: None)
    with pytest.raises(ReviewError, match="not reachable"):
        run(df, ReviewOptions(project="stage down"), ctx)
    assert not (tmp_path / "work").exists() and ctx.stats == {}


def test_personal_access_token_works(label_studio):  # noqa: F811
    admin = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    admin.jwt_settings.update(api_tokens_enabled=True, legacy_api_tokens_enabled=True, api_token_ttl_days=30)
    pat = admin.tokens.create().token
    assert pat.count(".") == 2  # a JWT refresh token, which the SDK exchanges for access tokens
    assert connect(label_studio.url, pat).check()["email"] == label_studio.username


def test_stage_pulls_finished_reviews_then_pushes_and_can_wait(label_studio, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    df = corpus(20)
    opts = ReviewOptions(project="stage project", sample=6, strategy="uncertain", seed=3)
    ctx = StageContext(stage="review", work_dir=tmp_path / "work", log=lambda m: None)
    out = run(df, opts, ctx)
    assert out.equals(df) and ctx.stats["push"]["imported"] == 6 and "pull" not in ctx.stats

    client = connect()
    project = find_project(client, "stage project")
    tasks = sorted(client.ls.tasks.list(project=project.id), key=lambda t: t.id)
    rejected = tasks[0].data["record_id"]
    client.ls.annotations.create(id=tasks[0].id, result=result("reject", []))
    client.ls.annotations.create(id=tasks[1].id, result=result("accept", ["S04"]))

    ctx2 = StageContext(stage="review", work_dir=tmp_path / "work", log=lambda m: None)
    out2 = run(df, opts, ctx2)  # the next run: merges what is finished, pushes nothing new
    assert ctx2.stats["push"]["imported"] == 0 and ctx2.stats["merge"]["reviewed"] == 2
    assert out2.filter(pl.col("id") == rejected)["drop_reason"].item() == "rejected_in_review"
    accepted = out2.filter(pl.col("id") == tasks[1].data["record_id"]).row(0, named=True)
    assert accepted["categories"] == ["S04"] and accepted["label_origin"] == "human"
    assert out2["id"].to_list() == df["id"].to_list()

    lines: list[str] = []
    ctx3 = StageContext(stage="review", work_dir=tmp_path / "work", log=lines.append)
    run(df, opts.model_copy(update={"wait": True, "poll_interval": 0.2, "timeout": 1.0}), ctx3)
    assert ctx3.stats["waited_pending"] == 4 and any("2/6 tasks done" in line for line in lines)


def test_make_label_studio_serve_prints_how_to_connect_and_stops_on_ctrl_c(label_studio, tmp_path):  # noqa: F811
    """`make label-studio`: a foreground server for reviewers; the generated token is shown once, never saved
    by curate, and works."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    proc = subprocess.Popen([sys.executable, "-m", "tests.servers.label_studio", "serve", "--data-dir",
                             str(tmp_path / "ls"), "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Ctrl-C" in line or proc.poll() is not None:
                break
        text = "".join(lines)
        assert f"export LABEL_STUDIO_URL=http://127.0.0.1:{port}" in text, text
        token = text.split("export LABEL_STUDIO_API_KEY=")[1].split()[0]
        assert connect(f"http://127.0.0.1:{port}", token).check()["email"]
        for path in (tmp_path / "ls").rglob("*"):  # Label Studio keeps it in its database, curate writes it nowhere
            if path.is_file() and path.suffix != ".sqlite3":
                assert token.encode() not in path.read_bytes(), path
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    with pytest.raises(ReviewError, match="not reachable"):
        connect(f"http://127.0.0.1:{port}", "x" * 40)


def test_review_in_a_pipeline_pushes_then_the_next_run_merges(label_studio, tmp_path, monkeypatch):  # noqa: F811
    quickstart = Path(__file__).resolve().parents[1] / "pipelines" / "data" / "quickstart"
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    config = {"name": "review-pipeline", "run_dir": str(tmp_path / "run"), "stages": [
        {"collect": {"sources": [{"preset": "xstest", "path": str(quickstart / "xstest")}]}},
        {"review": {"project": "pipeline review", "sample": 5, "strategy": "stratified"}},
    ]}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(config))
    run_pipeline(path, log=lambda m: None)
    store = RunStore(tmp_path / "run")
    manifest = store.manifest(2, "review")
    assert manifest["stats"]["push"]["imported"] == 5 and "pull" not in manifest["stats"]
    client = connect()
    project = find_project(client, "pipeline review")
    task = sorted(client.ls.tasks.list(project=project.id), key=lambda t: t.id)[0]
    client.ls.annotations.create(id=task.id, result=result("reject", []))

    second = run_pipeline(path, log=lambda m: None)  # the next plain run pulls what reviewers finished
    assert second.skipped == ["collect"] and second.ran == ["review"]  # review never skips; collect is unchanged
    out = store.read_stage(2, "review")
    assert out.filter(pl.col("id") == task.data["record_id"])["drop_reason"].item() == "rejected_in_review"
    again = store.manifest(2, "review")["stats"]
    assert again["push"]["imported"] == 0 and again["merge"]["rejected"] == 1
    for file in (tmp_path / "run").rglob("*"):
        if file.is_file():
            assert label_studio.token.encode() not in file.read_bytes(), file


@pytest.mark.browser
def test_labeling_screen_renders_with_pre_annotations(label_studio, artifacts_dir):  # noqa: F811
    """The generated config in Label Studio's real labeling screen (headless Chromium): every question shown,
    the classifier's labels pre-ticked, the answer pre-filled, no script errors. Screenshot in test-artifacts/."""
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    client = connect(label_studio.url, label_studio.token)
    push(client, corpus(8), "labeling screen", taxonomy=Taxonomy.load(), sample=None, strategy="all",
         log=lambda m: None)
    project = find_project(client, "labeling screen")
    target = [t for t in client.ls.tasks.list(project=project.id) if t.data["stratum"] == "S03/zh"][0]
    with Browser() as page:
        page.set_cookie("sessionid", label_studio.web_session(), "127.0.0.1")
        page.navigate(f"{label_studio.url}/projects/{project.id}/data?task={target.id}")
        text = page.wait_for_text("Harm dimensions", "Verdict on the answer", "Comment")
        for d in Taxonomy.load().dimensions:
            assert f"{d.id} {d.name_en}" in text
        assert target.data["prompt"] in text and target.data["response"] in text
        time.sleep(2)  # let the pre-annotation settle before reading the ticks
        checked = page.evaluate("Array.from(document.querySelectorAll('input:checked'))"
                                ".map(e => (e.closest('label') || e.parentElement.parentElement).innerText)")
        assert any(c.startswith("S03 ") for c in checked) and any(c.startswith("Yes") for c in checked), checked
        page.screenshot(artifacts_dir / "label_studio_task.png")
        assert page.errors() == []


def test_push_refreshes_a_curate_config_and_the_guidelines_but_not_a_hand_made_config(label_studio, tmp_path):  # noqa: F811
    """An existing project gets the current generated config (annotations keep fitting: every control keeps its
    name) and freshly rendered guidelines; a config a person wrote stays; a new model version is accepted."""
    client = connect(label_studio.url, label_studio.token)
    older = lc.label_config().replace(".curate-hidden { display: none; }", "")
    assert older != lc.label_config() and lc.GENERATED_MARK in older
    generated = client.ls.projects.create(title="older curate config", label_config=older, expert_instruction="old")
    hand_made = client.ls.projects.create(title="hand made config", label_config=older.replace(lc.GENERATED_MARK, "mine"))
    df = corpus(4)
    for project in (generated, hand_made):
        data = task(df.row(0, named=True), "S03/zh", None, "labels:source")["data"]
        client.ls.projects.import_tasks(id=project.id, request=[{"data": data}])
        task_id = next(iter(client.ls.tasks.list(project=project.id))).id
        client.ls.annotations.create(id=task_id, result=result("accept", ["S03"]))
        push(client, df, project.title, taxonomy=Taxonomy.load(), sample=None, strategy="all", log=lambda m: None)
    refreshed, kept = client.ls.projects.get(id=generated.id), client.ls.projects.get(id=hand_made.id)
    assert ".curate-hidden { display: none; }" in refreshed.label_config and "curate-content-warning" in refreshed.expert_instruction
    assert ".curate-hidden { display: none; }" not in kept.label_config
    assert refreshed.model_version == "classify"  # set after the import, once predictions carry it
