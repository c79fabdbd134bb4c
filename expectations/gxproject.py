"""The Great Expectations stores and Data Docs the gates share, under ``quality/gx/``.

Gates of several datasets run side by side (the warehouse DAG starts them together). A GX file
context rewrites ``great_expectations.yml`` whenever a datasource, a setting or a checkpoint
changes, so gates sharing one raced on it (``DuplicateKeyError``,
``InvalidConfigurationYamlError``). Instead:

- each gate validates in its own **ephemeral** context (``gx.get_context(mode="ephemeral")``:
  datasource, suite, validation definition and checkpoint in memory; nothing on disk);
- then, holding the quality lock, it stores its suite and its validation result (personal
  values masked, :mod:`campusdx.quality.personal`) in the shared filesystem stores and rebuilds the
  Data Docs pages of that result and the index, through a second ephemeral context whose
  stores are GX's filesystem defaults rooted at ``quality/gx``
  (``FilesystemStoreBackendDefaults``):
  the same layout as the file context had (``expectations/``,
  ``uncommitted/validations/``, ``uncommitted/data_docs/local_site/``), with no
  ``great_expectations.yml`` written at all. The index lists every stored validation of every
  dataset.

Stores write through :class:`AtomicFilesystemStoreBackend` (temporary file, fsync, rename), so
a gate killed mid-write leaves no half JSON file that would break every later Data Docs build.
"""

from __future__ import annotations

import logging
from pathlib import Path

import great_expectations as gx
from great_expectations.data_context.store.tuple_store_backend import TupleFilesystemStoreBackend
from great_expectations.data_context.types.base import (
    DataContextConfig,
    FilesystemStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier
from great_expectations.exceptions import DataContextError

from campusdx.core import atomic
from campusdx.core.settings import Paths
from campusdx.quality.datadocs import localise
from campusdx.quality.personal import scrub_validation

log = logging.getLogger(__name__)

SITE = "local_site"
SITE_DIR = Path("gx") / "uncommitted" / "data_docs" / SITE  # under quality/


class AtomicFilesystemStoreBackend(TupleFilesystemStoreBackend):
    """GX's filesystem store backend, each object written atomically and durably."""

    def _set(self, key, value, **kwargs):
        if not isinstance(key, tuple):
            key = key.to_tuple()
        path = Path(self.full_base_directory) / self._convert_key_to_filepath(key)
        atomic.write_bytes(path, value.encode("utf-8") if isinstance(value, str) else value)
        return str(path)


def validation_context():
    """An ephemeral GX context for one gate's validations: nothing it holds reaches the disk."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def store_context(paths: Paths):
    """An ephemeral GX context over the shared filesystem stores and Data Docs site of
    ``quality/gx`` (only while holding the quality lock: it writes there)."""

    root = paths.quality / "gx"
    root.mkdir(parents=True, exist_ok=True)
    defaults = FilesystemStoreBackendDefaults(root_directory=str(root))
    for store in defaults.stores.values():
        backend = store.get("store_backend", {})
        if backend.get("class_name") == "TupleFilesystemStoreBackend":
            backend.update(class_name=AtomicFilesystemStoreBackend.__name__, module_name=__name__)
    config = DataContextConfig(
        store_backend_defaults=defaults,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def save_suite(context, suite):
    """``context.suites.add_or_update(suite)`` in linear time; returns the stored suite.

    GX's own looks each expectation up among the stored suite's with ``list.index``, comparing
    normalised dicts: quadratic in the suite's size (about 1 s of an XSJBXX gate at scale 1,
    measured with cProfile). Here the lookup goes through a dict keyed by the expectation (GX
    hashes and compares expectations alike). The outcome is GX's: an expectation equal to a
    stored one keeps that one's id; GX's comparison includes the id, so a suite built afresh,
    whose expectations have none, gets new ids in both."""
    try:
        existing = context.suites.get(name=suite.name)
    except DataContextError:
        return context.suites.add(suite)
    ids = {expectation: expectation.id for expectation in existing.expectations}
    for expectation in suite.expectations:
        expectation.id = ids.get(expectation, expectation.id)
    suite.id = existing.id
    store = context.expectations_store
    store.update(key=store.get_key(name=suite.name, id=suite.id), value=suite)
    return context.suites.get(name=suite.name)


def publish(paths: Paths, suite, result_id, result, personal: dict[str, str]) -> Path:
    """Store ``suite`` and the validation ``result`` (already scrubbed of personal values) in the
    shared stores and render their Data Docs pages and the index; returns the index page.

    The caller holds the quality lock."""
    context = store_context(paths)
    _scrub_older_results(paths, context, personal)
    save_suite(context, suite)
    context.validation_results_store.set(result_id, result)
    context.build_data_docs(
        site_names=[SITE],
        resource_identifiers=[result_id, ExpectationSuiteIdentifier(name=suite.name)],
    )
    site = paths.quality / SITE_DIR
    localise(site)
    return site / "index.html"


SCRUBBED = ".personal-values-masked"  # under quality/gx: the results stored before were scrubbed


def _scrub_older_results(paths: Paths, context, personal: dict[str, str]) -> None:
    """Once per home: mask the personal values of the validation results an older gate stored
    as they were, and render every Data Docs page again from the masked results."""
    marker = paths.quality / "gx" / SCRUBBED
    if marker.exists():
        return
    store = context.validation_results_store
    keys = store.list_keys()
    for key in keys:
        store.set(key, scrub_validation(store.get(key), personal))
    if keys:
        context.build_data_docs(site_names=[SITE])
        log.info("masked the personal values of %d stored validation result(s) and their pages", len(keys))
    atomic.write_bytes(marker, b"")


def stored_validations(paths: Paths) -> list[Path]:
    """Every validation result file in the shared store."""
    root = paths.quality / "gx" / "uncommitted" / "validations"
    return sorted(root.rglob("*.json")) if root.is_dir() else []
