"""The stewards' and auditors' web page in a real headless Chromium (Debian's, driven by
Playwright; scripts/install-browser.sh installs it and the CJK font): the registry's steward
signs in, approves a pending request, and the application's next call succeeds; the three views
are screenshotted with their Chinese text drawn in a CJK font, not as empty boxes."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
import uvicorn

from tests.sharing import COLLEGE, campus, home_over

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Two different characters drawn in the page's font: a missing font draws both as the same box.
GLYPHS_DIFFER = """() => {
  const draw = (ch) => {
    const c = document.createElement('canvas'); c.width = 64; c.height = 64;
    const g = c.getContext('2d'); g.font = '48px ' + getComputedStyle(document.body).fontFamily;
    g.fillText(ch, 4, 52); return c.toDataURL();
  };
  return draw('审') !== draw('宀') && draw('批') !== draw('准');
}"""


def _browser_or_skip():
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is missing: run scripts/install-browser.sh (make test does)"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"{reason} (CI=true: a missing browser is a failure here)", pytrace=False)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(warehouse, tmp_path):
    demo = campus(home_over(warehouse.home / "snapshots", tmp_path / "home"))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(demo.client.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield demo, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_the_steward_approves_in_the_page_and_the_next_call_succeeds(served, tmp_path):
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    demo, base = served
    ends = str(date.today() + timedelta(days=30))
    ask = {
        "dataset": "students",
        "scope": [COLLEGE],
        "purpose": "图书馆借阅证：本院在校学生",
        "ends_on": ends,
    }
    gid = demo.post("card", "/v1/grants", ask).json()["id"]
    assert demo.get("card", "/v1/data/students").status_code == 403
    shots = Path(os.environ.get("CAMPUSDX_SCREENSHOTS_DIR") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 800}, locale="zh-CN")
            page.goto(f"{base}/ui/requests")
            assert page.url.endswith("/ui/login")  # nothing without signing in
            page.fill("input[name=principal_id]", demo.ids["registry"])
            page.fill("input[name=secret]", demo.secrets["registry"])
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/ui/requests")
            row = page.locator(f"#grant-{gid}")
            assert "图书馆借阅证" in row.inner_text() and "待审批的数据访问申请" in page.inner_text("h1")
            assert page.evaluate(GLYPHS_DIFFER), "Chinese text is drawn as empty boxes: no CJK font"
            page.screenshot(path=str(shots / "requests.png"), full_page=True)
            row.locator("button[name=approve]").click()
            page.wait_for_url(f"{base}/ui/requests")
            assert page.locator(f"#grant-{gid}").count() == 0
            page.goto(f"{base}/ui/grants")
            assert "图书馆借阅证" in page.locator(f"#grant-{gid}").inner_text()
            page.screenshot(path=str(shots / "grants.png"), full_page=True)
            page.goto(f"{base}/ui/audit?dataset=students")
            assert page.locator("td", has_text="/v1/data/students").count() >= 1
            assert page.evaluate(GLYPHS_DIFFER)
            page.screenshot(path=str(shots / "audit.png"), full_page=False)
        finally:
            browser.close()

    assert demo.client.app.state.service.store.grant(gid).decided_by == demo.ids["registry"]
    r = demo.get("card", "/v1/data/students")
    assert r.status_code == 200 and r.json()["records"]
    for name in ("requests", "grants", "audit"):
        assert (shots / f"{name}.png").stat().st_size > 10_000
    if os.environ.get("CAMPUSDX_SCREENSHOTS_DIR") is None:
        shutil.rmtree(shots)
