"""Data Docs that render with no network: GX's CDN links rewritten to vendored copies.

GX 1.24's page templates load Bootstrap, jQuery, Vega, Font Awesome and the GX logo from public
CDNs. The exchange server has no Internet, so without this the pages load no script and throw
``$ is not defined``. The libraries are npm packages pinned in ``expectations/datadocs/package.json``
(installed by ``make`` with ``npm ci``: nothing is downloaded at run time). After every Data Docs
build, :func:`localise` copies the files the pages use into the site's ``static/vendor/`` and
rewrites each page's links to relative paths.
"""

from __future__ import annotations

import logging
import re
import shutil
from os.path import relpath
from pathlib import Path

log = logging.getLogger(__name__)

MODULES = Path(__file__).parent / "datadocs" / "node_modules"

_FILTER = "dist/extensions/filter-control/bootstrap-table-filter-control"
_TABLE = "https://unpkg.com/bootstrap-table@"
_BOOTSTRAP = "bootstrap/dist/"
_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs/"
# CDN address in GX's templates -> the same file in the pinned npm package.
CDN_FILES = {
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/build/vega-embed.min.js",
    f"{_CDNJS}font-awesome/6.6.0/css/all.min.css": "@fortawesome/fontawesome-free/css/all.min.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    f"{_CDNJS}popper.js/1.12.9/umd/popper.min.js": "popper.js/dist/umd/popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": _BOOTSTRAP
    + "js/bootstrap.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": _BOOTSTRAP
    + "css/bootstrap.min.css",
    f"{_TABLE}1.19.1/dist/bootstrap-table.min.js": "bootstrap-table/dist/bootstrap-table.min.js",
    f"{_TABLE}1.19.1/dist/bootstrap-table.min.css": "bootstrap-table/dist/bootstrap-table.min.css",
    f"{_TABLE}1.19.1/{_FILTER}.min.js": f"bootstrap-table/{_FILTER}.min.js",
    # the templates ask for 1.19.0's filter-control stylesheet beside 1.19.1's scripts: 1.19.1's
    f"{_TABLE}1.19.0/{_FILTER}.css": f"bootstrap-table/{_FILTER}.css",
    f"{_TABLE}1.19.0/{_FILTER}.min.css": f"bootstrap-table/{_FILTER}.min.css",
    f"{_CDNJS}bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js"
    ),
    f"{_CDNJS}bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css"
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.css"
    ),
}
# Directories a vendored file needs beside it (Font Awesome's stylesheet loads ../webfonts/).
COMPANIONS = {"@fortawesome/fontawesome-free/css/all.min.css": "@fortawesome/fontawesome-free/webfonts"}
# GX's logo comes from its S3 bucket; the same images ship in the site's own static/images/.
LOGO_BUCKET = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"
# Attributes that make no sense for a local file (and crossorigin breaks loading from file://).
SRI = re.compile(r'\s+(?:integrity="[^"]*"|crossorigin="[^"]*")')
TAG = re.compile(r"<(?:script|link|img)\b[^>]*>", re.S)
STATIC = re.compile(r'(?:src|href)="((?:\.\./)+static/([^"?#]+))"')
REMOTE = re.compile(r'(?:src|href)="(https?://[^"]+)"')


class AssetsMissing(RuntimeError):
    """The vendored npm packages are not installed (run ``make``)."""


def available() -> bool:
    return all((MODULES / path).is_file() for path in CDN_FILES.values())


def vendor(site: Path) -> Path:
    """Copy the vendored files into ``site/static/vendor`` (once per content change)."""
    if not available():
        missing = sorted(p for p in CDN_FILES.values() if not (MODULES / p).is_file())
        raise AssetsMissing(
            f"Data Docs assets not installed ({len(missing)} missing, e.g. {missing[0]}): "
            "run `make` (it runs `npm ci` in expectations/datadocs)"
        )
    target = site / "static" / "vendor"
    for path in CDN_FILES.values():
        _copy(MODULES / path, target / path)
        if path in COMPANIONS:
            for item in (MODULES / COMPANIONS[path]).iterdir():
                _copy(item, target / COMPANIONS[path] / item.name)
    return target


def _copy(source: Path, destination: Path) -> None:
    if destination.exists() and destination.stat().st_size == source.stat().st_size:
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)


def rewrite(page: Path, site: Path) -> int:
    """Point one page's CDN links at the vendored copies; returns how many links changed."""
    text = page.read_text(encoding="utf-8")
    changed = 0
    prefix = Path(relpath(site, page.parent)).as_posix()

    def local(match: re.Match) -> str:
        nonlocal changed
        tag = match.group(0)
        for url, path in CDN_FILES.items():
            if f'"{url}"' in tag:
                changed += 1
                return SRI.sub("", tag.replace(f'"{url}"', f'"{prefix}/static/vendor/{path}"'))
        if LOGO_BUCKET in tag:
            changed += 1
            return re.sub(re.escape(LOGO_BUCKET) + r"([\w.-]+)[^\"]*", rf"{prefix}/static/images/\1", tag)
        # GX counts one directory too few on validation pages (it forgets the run-name level)
        for link in STATIC.finditer(tag):
            if not (page.parent / link.group(1)).exists() and (site / "static" / link.group(2)).exists():
                changed += 1
                tag = tag.replace(f'"{link.group(1)}"', f'"{prefix}/static/{link.group(2)}"')
        return tag

    text = TAG.sub(local, text)
    if changed:
        tmp = page.with_suffix(".html.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(page)
    return changed


def remote_loads(page: Path) -> list[str]:
    """Addresses a page would still fetch from the network (scripts, stylesheets, images)."""
    text = page.read_text(encoding="utf-8")
    return [m.group(1) for tag in TAG.findall(text) for m in REMOTE.finditer(tag)]


def localise(site: Path) -> int:
    """Make a Data Docs site self-contained; returns the number of links rewritten.

    Without the vendored packages the pages keep their CDN links and a warning says so.
    """
    try:
        vendor(site)
    except AssetsMissing as missing:
        log.warning("Data Docs keep their CDN links: %s", missing)
        return 0
    return sum(rewrite(page, site) for page in site.rglob("*.html"))
