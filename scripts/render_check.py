"""Render the quality pages in headless Chromium: a screenshot of each, and its console errors.

    .venv/bin/python scripts/render_check.py [--home var] [--out DIR] [PAGE ...]

Default pages: ``<home>/quality/summary.html``, the GX Data Docs index, every suite page and each suite's
newest validation page. Needs a Chromium on
PATH (Debian: ``apt-get install chromium``); not run by the tests, which do not install a
browser. The page is loaded through the DevTools protocol (over a pipe, no port): a
``console.error``, an uncaught exception, an error in the browser's log or a resource that
failed to load counts as an error. Exit 1 when a page has one; the screenshots go to
``<home>/quality/screenshots/``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from campusdx.core.settings import paths as default_paths  # noqa: E402  (repository root on sys.path now)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("no Chromium on PATH (Debian: apt-get install chromium)")


class DevTools:
    """The Chrome DevTools Protocol over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out)."""

    def __init__(self, profile: str) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        self.process = subprocess.Popen(
            [
                chromium(),
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "--window-size=1280,1000",
                "about:blank",
            ],
            # Chromium reads commands on fd 3 and writes replies on fd 4; both are moved out of
            # the way first, so that one of our pipes being fd 3 or 4 already cannot clobber the other
            pass_fds=(3, 4),
            preexec_fn=lambda: (
                os.dup2(to_browser_r, 100),
                os.dup2(from_browser_w, 101),
                os.dup2(100, 3),
                os.dup2(101, 4),
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def wait_for(self, method: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {timeout_s}s")
            self.events.append(self._read())

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


def render(page: Path, screenshot: Path) -> list[str]:
    """The console errors, uncaught exceptions and failed loads of ``page``; writes a screenshot."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        tools = DevTools(profile)
        try:
            target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                tools.send(f"{domain}.enable", session=session)
            tools.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
            tools.wait_for("Page.loadEventFired")
            time.sleep(1.0)  # late scripts
            shot = tools.send("Page.captureScreenshot", {"format": "png"}, session=session)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            tools.send("Runtime.evaluate", {"expression": "1"}, session=session)  # drain events
        finally:
            tools.close()
    errors = []
    for event in tools.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            errors.append(f"exception: {details.get('exception', {}).get('description') or details['text']}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(
                "console.error: "
                + " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            )
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            errors.append(f"{entry['source']}: {entry['text']} {entry.get('url', '')}".strip())
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            errors.append(f"load failed: {params.get('errorText')} (request {params.get('requestId')})")
    return list(dict.fromkeys(errors))


def default_pages(quality: Path) -> list[Path]:
    """The summary, the Data Docs index, every suite's page and each suite's newest validation."""
    site = quality / "gx" / "uncommitted" / "data_docs" / "local_site"
    newest = {}
    for page in sorted((site / "validations").glob("*/*/*/*.html")):
        newest[page.parts[-4]] = page  # validations/<suite>/<run name>/<run time>/<page>
    return [
        quality / "summary.html",
        site / "index.html",
        *sorted((site / "expectations").glob("*.html")),
        *newest.values(),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=None, help="CAMPUSDX_HOME (default: the current one)")
    parser.add_argument("--out", type=Path, default=None, help="where the screenshots go")
    parser.add_argument("pages", nargs="*", type=Path)
    args = parser.parse_args(argv)
    quality = (args.home / "quality") if args.home else default_paths().quality
    pages = args.pages or default_pages(quality)
    out = args.out or quality / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for page in pages:
        if not page.exists():
            print(f"{page}: missing (run the gate first)")
            failed += 1
            continue
        shot = out / f"{page.parent.name}-{page.stem}.png"
        errors = render(page, shot)
        print(f"{page}: {'OK' if not errors else f'{len(errors)} console error(s)'}; screenshot {shot}")
        for line in errors:
            print(f"    {line}")
        failed += bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
