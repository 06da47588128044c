"""The dashboard in headless Chromium: sign in through the emulator's OAuth pages, open every
page (saving a screenshot of each: into docs/screenshots/ with TANDEM_SCREENSHOTS=docs/screenshots),
check that the plots have data, filter the leaderboard, download an export, retry a failed job, and
check that a rater sees no model name. Run on SQLite only: the browser, not the database, is under test here."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import Select, WebDriverWait

from tandem.infra import dead_letters, queue
from tandem.infra.inbox import IncomingDelivery
from tandem.infra.models import DeadLetterKind
from tests.browser.conftest import PLAN
from tests.conftest import run_jobs

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# The README's screenshots are taken when asked (TANDEM_SCREENSHOTS=docs/screenshots): a run that
# rewrote tracked files would leave the checkout changed, under other tests that compare its status.
SHOTS = Path(os.environ.get("TANDEM_SCREENSHOTS") or tempfile.mkdtemp(prefix="tandem-screenshots-"))
LABELLED = "return [...document.querySelectorAll('input:not([type=hidden]), select')].every(e => e.labels.length)"
WAIT = 20


def sign_in(browser, dashboard, login: str) -> None:
    browser.get(f"{dashboard.url}/dashboard/")
    WebDriverWait(browser, WAIT).until(seen.element_to_be_clickable((By.ID, "sign-in"))).click()
    WebDriverWait(browser, WAIT).until(seen.element_to_be_clickable((By.ID, f"authorize-{login}"))).click()
    WebDriverWait(browser, WAIT).until(seen.url_contains("/dashboard/"))
    WebDriverWait(browser, WAIT).until(seen.presence_of_element_located((By.CSS_SELECTOR, ".who")))


def open_page(browser, url: str, heading: str, shot: str | None = None, *, services=None) -> None:
    """Open the page (with ``services``: with its figures computed, see ``computed``)."""
    browser.get(url)
    WebDriverWait(browser, WAIT).until(seen.text_to_be_present_in_element((By.TAG_NAME, "h1"), heading))
    if services is not None:
        computed(browser, services)
    if shot:
        SHOTS.mkdir(parents=True, exist_ok=True)
        # The whole page, not just the window: its height as laid out.
        height = browser.execute_script("return document.documentElement.scrollHeight")
        width = browser.get_window_size()["width"]
        browser.set_window_size(width, min(max(height + 120, 600), 4000))
        browser.save_screenshot(str(SHOTS / f"{shot}.png"))
        browser.set_window_size(width, 900)


def computed(browser, services) -> None:
    """If the page says its figures are being computed: the dashboard's jobs run (as a worker
    would), and the page refreshes itself and shows them."""
    computing = browser.find_elements(By.ID, "computing")
    if computing:
        run_jobs(services, [queue.DASHBOARD])
        WebDriverWait(browser, WAIT).until(seen.staleness_of(computing[0]))
        WebDriverWait(browser, WAIT).until(seen.presence_of_element_located((By.TAG_NAME, "h1")))
    assert not browser.find_elements(By.ID, "computing")


def values(browser, selector: str) -> list[float]:
    return [float(e.get_attribute("data-value")) for e in browser.find_elements(By.CSS_SELECTOR, selector)]


def test_a_researcher_signs_in_and_every_page_shows_its_data(browser, synthetic, dashboard):
    open_page(browser, f"{dashboard.url}/", "Tandem", "landing")
    open_page(browser, f"{dashboard.url}/dashboard/login", "Sign in", "sign-in")
    sign_in(browser, dashboard, "research-lead")
    open_page(browser, f"{dashboard.url}/dashboard/", "Overview", "overview", services=dashboard.services)
    # Keyboard first: the first Tab lands on the link that skips the navigation.
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to content"
    bars = values(browser, "svg.plot rect.bar")
    assert len(bars) == 30 and sum(bars) > 0
    assert browser.find_element(By.ID, "wait-first-vote").text != "n/a"
    assert browser.find_element(By.ID, "wait-approval").text != "n/a"

    open_page(browser, f"{dashboard.url}/dashboard/tasks", "Tasks", "tasks")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#tasks tbody tr")) == 50
    browser.find_element(By.LINK_TEXT, "Next").click()
    WebDriverWait(browser, WAIT).until(seen.url_contains("page=2"))

    open_page(browser, f"{dashboard.url}/dashboard/tasks/{dashboard.task_id}", f"Task {dashboard.task_id}", "task")
    assert len(browser.find_elements(By.CSS_SELECTOR, "a.pr")) == 2
    assert {e.text for e in browser.find_elements(By.CSS_SELECTOR, "dd .model")} == set(dashboard.models.values())
    assert "Cleaner fix." in browser.find_element(By.ID, "judgments").text

    open_page(
        browser, f"{dashboard.url}/dashboard/leaderboard", "Leaderboard", "leaderboard", services=dashboard.services
    )
    models = browser.find_elements(By.CSS_SELECTOR, "svg.plot g.model")
    assert {m.get_attribute("data-model") for m in models} >= set(PLAN.model_names)
    assert all(m.find_elements(By.CSS_SELECTOR, "line.interval") for m in models)
    cells = values(browser, "svg.heatmap g.cell")
    assert cells and all(0 <= v <= 1 for v in cells)
    assert browser.execute_script(LABELLED), "every filter control has a label"

    open_page(browser, f"{dashboard.url}/dashboard/raters", "Raters", "raters", services=dashboard.services)
    flagged = browser.find_elements(By.CSS_SELECTOR, "#raters tr.flagged")
    assert [row.find_element(By.TAG_NAME, "th").text for row in flagged] == ["rater-07"]
    assert "always A" in flagged[0].text
    browser.find_element(By.LINK_TEXT, "rater-07").click()
    WebDriverWait(browser, WAIT).until(seen.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Rater rater-07"))
    open_page(browser, browser.current_url, "Rater rater-07", "rater", services=dashboard.services)
    assert "always A" in browser.find_element(By.ID, "rater-figures").text

    open_page(browser, f"{dashboard.url}/dashboard/data", "Data", "data")
    browser.set_window_size(390, 844)  # a phone
    open_page(browser, f"{dashboard.url}/dashboard/", "Overview", "overview-phone")
    assert browser.execute_script("return document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_filtering_the_leaderboard(browser, synthetic, dashboard):
    sign_in(browser, dashboard, "research-lead")
    open_page(browser, f"{dashboard.url}/dashboard/leaderboard", "Leaderboard", services=dashboard.services)
    everything = browser.find_element(By.CSS_SELECTOR, "main > p").text
    Select(browser.find_element(By.NAME, "repo")).select_by_visible_text("evals/mirror-0")
    browser.find_element(By.NAME, "round").send_keys("1")
    browser.find_element(By.NAME, "metadata").send_keys("suite=s1")
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    WebDriverWait(browser, WAIT).until(seen.url_contains("repo=evals%2Fmirror-0"))
    computed(browser, dashboard.services)
    filtered = browser.find_element(By.CSS_SELECTOR, "main > p").text
    assert int(filtered.split()[0]) < int(everything.split()[0])
    assert Select(browser.find_element(By.NAME, "repo")).first_selected_option.text == "evals/mirror-0"
    assert browser.find_elements(By.CSS_SELECTOR, "svg.plot g.model")


def test_downloading_the_export(browser, synthetic, dashboard):
    sign_in(browser, dashboard, "research-lead")
    open_page(browser, f"{dashboard.url}/dashboard/data", "Data")
    Select(browser.find_element(By.NAME, "repo")).select_by_visible_text("evals-org/mlflow")
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    WebDriverWait(browser, WAIT).until(seen.url_contains("repo=evals-org"))
    browser.find_element(By.ID, "download-jsonl").click()
    target = browser.downloads / "tandem-jsonl-evals-org-mlflow.jsonl"
    WebDriverWait(browser, WAIT).until(lambda _: target.exists())
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert {r["task_id"] for r in records} == {dashboard.task_id}
    assert {r["rater_login"] for r in records} == {"rater-one", "rater-two"}
    assert {r["model_a"] for r in records} == {dashboard.models["A"]}


def test_retrying_a_failed_delivery(browser, dashboard):
    services = dashboard.services
    dead_letters.park(
        services,
        IncomingDelivery("guid-dead-1", "issue_comment", "created", "{}"),
        DeadLetterKind.FAILED,
        "the handler failed on every try",
    )
    sign_in(browser, dashboard, "ops-lead")
    open_page(browser, f"{dashboard.url}/dashboard/", "Overview", services=services)
    assert "the handler failed on every try" in browser.find_element(By.CSS_SELECTOR, "tr.dead-letter").text
    browser.find_element(By.CSS_SELECTOR, 'button[aria-label="Retry delivery guid-dead-1"]').click()
    WebDriverWait(browser, WAIT).until(seen.text_to_be_present_in_element((By.CSS_SELECTOR, ".notice"), "guid-dead-1"))
    assert "(replayed)" in browser.find_element(By.CSS_SELECTOR, "tr.dead-letter").text
    assert services.queue("webhooks").get_job_ids() == ["delivery-guid-dead-1"]


def test_a_rater_sees_their_own_statistics_and_no_model_name(browser, synthetic, dashboard):
    sign_in(browser, dashboard, "rater-one")
    WebDriverWait(browser, WAIT).until(seen.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Rater rater-one"))
    open_page(browser, browser.current_url, "Rater rater-one", "rater-own-view", services=dashboard.services)
    names = set(PLAN.model_names) | set(dashboard.models.values())
    assert f"Task {dashboard.task_id}" in browser.page_source
    assert not [name for name in names if name in browser.page_source]
    assert not browser.find_elements(By.CSS_SELECTOR, "header nav")
    for path in ("/dashboard/leaderboard", f"/dashboard/tasks/{dashboard.task_id}", "/dashboard/raters/rater-07"):
        open_page(browser, f"{dashboard.url}{path}", "Error 403")
        assert not [name for name in names if name in browser.page_source]
