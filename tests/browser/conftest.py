"""Headless Chromium for the dashboard's browser tests: Debian's chromium driven through its
chromium-driver by Selenium (scripts/services chromium installs both). Without them the tests
skip, saying why. A test that fails leaves a screenshot of the page in var/browser-failures/."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from tandem.infra.db import Base
from tests.dashboard_fixtures import TEAM, dashboard  # noqa: F401  (the fixture)
from tests.stats_synthetic import START, Plan, database_rows

ROOT = Path(__file__).parents[2]
FAILURES = ROOT / "var" / "browser-failures"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)
# Synthetic votes (tests/stats_synthetic.py) spread over the last 25 days, with one rater who
# always answers A: enough for every plot and a flag.
PLAN = Plan(models=6, pairs=600, raters=8, raters_per_pair=3, always_a=("rater-07",))


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and DRIVER):
        pytest.skip("chromium and chromium-driver are not installed: `scripts/services chromium` installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    driver = item.funcargs.get("browser")
    if report.when == "call" and report.failed and driver is not None:
        FAILURES.mkdir(parents=True, exist_ok=True)
        path = FAILURES / f"{item.name}.png"
        driver.save_screenshot(str(path))
        report.sections.append(("browser", f"screenshot of the page at {driver.current_url}: {path}"))
    return report


@pytest.fixture
def synthetic(services) -> Plan:
    """The plan's votes, of team `lab`, inserted before anything else (SQLite then gives the
    real task the next ids). Each minute of the plan becomes an hour ending now, and each pair
    closes a day after it opened (if that has come)."""
    now = datetime.now(UTC)
    begin = now - timedelta(hours=PLAN.pairs)
    with services.storage.engine.begin() as connection:
        for batch in database_rows(PLAN, ratings_every=4):
            for name, rows in batch.items():
                for row in rows:
                    for key, value in row.items():
                        if isinstance(value, datetime):
                            row[key] = begin + (value - START) * 60
                    if name == "tasks":
                        row["team"] = TEAM
                    if name == "pairs":
                        closed = row["opened_at"] + timedelta(days=1)
                        row["closed_at"] = closed if closed < now else None
                if rows:
                    connection.execute(insert(Base.metadata.tables[name]), rows)
    return PLAN
