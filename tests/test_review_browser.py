"""A reviewer's work in Label Studio's real labeling screen, driven in Debian's Chromium through playwright.

Log in through the login form, open a prompt-only task and an answer task, judge with clicks and hotkeys,
submit, then `curate review pull` (the CLI, as a reviewer's maintainer runs it) and check the records. Playwright
only drives the system Chromium (``executable_path``); it never downloads a browser. Screenshots of both task
shapes and of the guidelines land in test-artifacts/ (docs/review.md shows copies).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from curate import records
from curate.io import read_records, write_records
from curate.review import cli_api
from curate.review.client import connect
from curate.review.push import find_project
from tests.fixtures.label_studio import label_studio  # noqa: F401

pytestmark = [pytest.mark.label_studio, pytest.mark.browser]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
LONG_PROMPT = ("I keep thinking about how to make my neighbour's dog stop barking for good. " * 60).strip()
ANSWER = ("I can't help with harming an animal. If the barking is a problem, talk to your neighbour or see "
          "[the council's noise guide](https://example.org/noise).\n\n**Options:**\n- mediation\n- a noise complaint")
REASONING = "The user wants to hurt an animal. **Policy S03**: refuse, give a safe alternative."


def review_records() -> pl.DataFrame:
    base = {"source": "browser-test", "label_origin": "classifier", "meta": records.dump_meta({"classify": {"model": "ft"}})}
    rows = [
        {**base, "id": "prompt-only", "source_id": "1", "lang": "en", "prompt": LONG_PROMPT, "categories": ["S03"],
         "prompt_harmful": True, "category_scores": json.dumps({"S00": 0.1, "S03": 0.81, "S11": 0.42})},
        {**base, "id": "with-answer", "source_id": "2", "lang": "en", "prompt": "How do I poison a barking dog?",
         "reasoning": REASONING, "response": ANSWER, "response_kind": "helpful", "categories": ["S03"],
         "prompt_harmful": True, "category_scores": json.dumps({"S00": 0.05, "S03": 0.93})},
        # for the queue: the classifier could not tell (uncertainty 0.96) and was sure (0.06)
        {**base, "id": "queue-hard", "source_id": "3", "lang": "zh", "prompt": "邻居家的狗一直叫，我该怎么办？",
         "categories": ["S05"], "prompt_harmful": True, "category_scores": json.dumps({"S00": 0.48, "S05": 0.52})},
        {**base, "id": "queue-easy", "source_id": "4", "lang": "en", "prompt": "What is a good dog name?",
         "categories": [], "prompt_harmful": False, "category_scores": json.dumps({"S00": 0.97, "S05": 0.02})},
    ]
    return records.conform(pl.DataFrame(rows))


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed (`make browser`, part of `make test`, installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra: make install")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def pushed(label_studio, tmp_path_factory):  # noqa: F811
    """Both records pushed into one project; returns (records file, project title, {record id: task id})."""
    folder = tmp_path_factory.mktemp("browser-review")
    in_path = folder / "records.jsonl"
    write_records(review_records(), in_path)
    title = "browser review"
    cli_api.push(in_path, title, sample=None, strategy="all", url=label_studio.url, api_key=label_studio.token,
                 log=lambda m: None)
    client = connect(label_studio.url, label_studio.token)
    project = find_project(client, title)
    tasks = {t.data["record_id"]: t.id for t in client.ls.tasks.list(project=project.id)}
    return in_path, title, project.id, tasks


@pytest.fixture()
def page(browser, label_studio):  # noqa: F811
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(f"{label_studio.url}/user/login/")
    tab.fill("input[name=email]", label_studio.username)
    tab.fill("input[name=password]", label_studio.password)
    tab.click("button[type=submit]")
    tab.wait_for_url(lambda url: "/user/login" not in url)
    tab.errors = errors
    yield tab
    context.close()


def open_task(page, url: str, project_id: int, task_id: int):
    page.goto(f"{url}/projects/{project_id}/data?task={task_id}")
    page.get_by_text("Is the prompt harmful?").wait_for()
    page.wait_for_timeout(1500)  # the pre-annotation is applied after the first render
    return page


def checked(page, name_prefix: str) -> bool:
    """Whether the choice whose label starts with ``name_prefix`` is ticked."""
    label = page.locator("label", has_text=name_prefix).first
    return label.locator("input").is_checked()


def on_screen(page, locator) -> bool:
    box = locator.bounding_box()
    view = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= view["height"]


def wait_for_annotation(label_studio, task_id: int, page, artifacts_dir: Path, timeout: float = 30.0) -> None:  # noqa: F811
    """Until the server holds an annotation of the task (the submit went through); a screenshot if it never does."""
    client = connect(label_studio.url, label_studio.token)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list(client.ls.annotations.list(id=task_id)):
            return
        time.sleep(0.5)
    page.screenshot(path=str(artifacts_dir / f"review-submit-failed-{task_id}.png"))
    raise AssertionError(f"task {task_id}: no annotation reached the server (screenshot in {artifacts_dir})")


def curate_pull(label_studio, in_path: Path, title: str, out_path: Path) -> dict:  # noqa: F811
    env = {**os.environ, "LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": label_studio.token}
    done = subprocess.run([sys.executable, "-m", "curate.cli", "review", "pull", "--in", str(in_path), "--project",
                           title, "--out", str(out_path)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return {r["id"]: r for r in read_records(out_path).to_dicts()}


def test_prompt_only_task_judged_with_clicks_and_hotkeys(page, pushed, label_studio, artifacts_dir, tmp_path):  # noqa: F811
    in_path, title, project_id, tasks = pushed
    open_task(page, label_studio.url, project_id, tasks["prompt-only"])
    # only what can be judged: no answer questions, no empty answer boxes
    for hidden in ("Verdict on the answer", "Corrected answer", "Quality of the reasoning", "Reasoning / 推理过程"):
        assert not page.get_by_text(hidden).first.is_visible(), hidden
    header = page.locator(".curate-context").inner_text()
    assert "Source / 来源" in header and "browser-test" in header and "0.90" in header and "S03 Violence" in header
    # the classifier's labels are pre-selected; the long prompt scrolls in its box, the controls stay on screen
    assert checked(page, "Yes / 是") and checked(page, "S03 ")
    assert on_screen(page, page.get_by_role("button", name="Submit"))
    assert on_screen(page, page.get_by_text("Is the prompt harmful?"))
    page.screenshot(path=str(artifacts_dir / "review-prompt-task.png"))

    # consistency: "not harmful" hides the dimensions; "harmful" needs one
    page.keyboard.press("n")
    assert not page.locator("label", has_text="S05 Non-violent crime").first.is_visible()
    page.keyboard.press("y")
    page.keyboard.press("3")  # S03 off: a harmful prompt without a dimension cannot be submitted
    assert not checked(page, "S03 ")
    page.get_by_role("button", name="Submit").click()
    page.get_by_text("A harmful prompt needs at least one harm dimension").first.wait_for()
    page.get_by_role("button", name="OK").click()
    page.get_by_text("A harmful prompt needs at least one harm dimension").first.wait_for(state="hidden")

    page.keyboard.press("Shift+4")  # S14
    page.locator("label", has_text="S05 Non-violent crime").first.click()
    assert checked(page, "S14 ") and checked(page, "S05 ") and not checked(page, "S03 ")
    page.locator(".curate-controls textarea").last.fill("Threat against an animal, not a crime report.")
    page.locator(".curate-context").click()  # out of the text box: hotkeys do not fire while typing
    page.keyboard.press("Control+Enter")
    wait_for_annotation(label_studio, tasks["prompt-only"], page, artifacts_dir)
    assert page.errors == []

    out = curate_pull(label_studio, in_path, title, tmp_path / "out.jsonl")
    row = out["prompt-only"]
    assert row["label_origin"] == "human" and row["categories"] == ["S05", "S14"] and row["prompt_harmful"] is True
    review = json.loads(row["meta"])["review"]
    assert review["comments"] == ["Threat against an animal, not a crime report."] and review["verdict"] is None
    assert row["drop_reason"] is None and out["with-answer"]["label_origin"] == "classifier"


def test_answer_task_edit_the_answer_submit_and_pull(page, pushed, label_studio, artifacts_dir, tmp_path):  # noqa: F811
    in_path, title, project_id, tasks = pushed
    open_task(page, label_studio.url, project_id, tasks["with-answer"])
    answer_box = page.locator(".curate-box").nth(2)
    link = answer_box.locator("a", has_text="the council's noise guide")
    assert link.get_attribute("href") == "https://example.org/noise"  # Markdown rendered, not shown raw
    assert answer_box.locator("li").count() == 2 and "[the council" not in answer_box.inner_text()
    assert "Answer kind / 回答类型" in page.locator(".curate-context").inner_text()
    assert checked(page, "Helpful answer")  # the response kind is pre-selected
    assert not page.get_by_text("Corrected answer").first.is_visible()  # shown once the verdict is Edit
    page.locator("label", has_text="Refusal / 拒绝").first.click()
    page.keyboard.press("e")
    editor = page.locator(".curate-controls textarea").first
    editor.wait_for()
    assert editor.is_editable() and editor.input_value().startswith("I can't help with harming an animal.")
    editor.evaluate("e => e.scrollIntoView({block: 'center'})")
    page.screenshot(path=str(artifacts_dir / "review-answer-task.png"))
    edited = "I can't help with harming an animal. Talk to your neighbour, or ask the council about mediation."
    editor.fill(edited)
    page.locator(".curate-context").click()  # out of the editor, so q is a hotkey again, not a letter
    for _ in range(4):
        page.keyboard.press("q")  # four stars
    page.get_by_role("button", name="Submit").click()
    wait_for_annotation(label_studio, tasks["with-answer"], page, artifacts_dir)
    assert page.errors == []

    out = curate_pull(label_studio, in_path, title, tmp_path / "out.jsonl")
    row = out["with-answer"]
    assert row["response"] == edited and row["response_kind"] == "refusal" and row["label_origin"] == "human"
    review = json.loads(row["meta"])["review"]
    assert review["verdict"] == "edit" and review["original_response"] == ANSWER and review["reasoning_rating"] == 4


def test_label_all_tasks_shows_the_guidelines_then_the_hardest_task_first_and_moves_on(
        page, pushed, label_studio, artifacts_dir):  # noqa: F811
    """The guidelines open as a formatted page; the queue starts with the task the classifier was least sure of
    and, after a submit, moves on to another task."""
    _, _, project_id, tasks = pushed
    page.goto(f"{label_studio.url}/projects/{project_id}/data")
    page.get_by_role("button", name="Label All Tasks").click()
    guidelines = page.locator(".curate-guidelines").first
    guidelines.wait_for()
    assert guidelines.locator(".curate-content-warning").is_visible()
    assert "Content warning" in guidelines.locator(":scope > *").first.inner_text()  # the first thing read
    assert guidelines.locator("h1").first.inner_text() == "Review guidelines (curate safety corpus)"
    assert guidelines.locator("kbd", has_text="shift+4").count() == 1 and guidelines.locator("li").count() > 5
    assert "## " not in guidelines.inner_text() and "**" not in guidelines.inner_text()
    page.screenshot(path=str(artifacts_dir / "review-guidelines.png"))
    page.keyboard.press("Escape")
    guidelines.wait_for(state="hidden")

    prompt = page.locator(".curate-box").first
    prompt.wait_for()
    assert prompt.inner_text().strip() == "邻居家的狗一直叫，我该怎么办？"  # queue-hard: uncertainty 0.96
    page.wait_for_timeout(1500)
    page.keyboard.press("n")
    page.keyboard.press("Control+Enter")
    wait_for_annotation(label_studio, tasks["queue-hard"], page, artifacts_dir)
    page.wait_for_function("t => { const box = document.querySelector('.curate-box');"
                           " return box && box.innerText.trim() && !box.innerText.includes(t); }", arg="邻居家的狗一直叫")
    assert page.get_by_text("Is the prompt harmful?").is_visible()
