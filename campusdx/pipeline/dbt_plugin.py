"""A dbt-duckdb plugin (``profiles.yml``): the pseudonym key exists before any model runs.

Every dbt invocation that opens the warehouse (the warehouse DAG's `dbt build` per part, the
tests', a developer's bare ``dbt build``) goes through the profile, so the key is ensured in
this one place: created on the embedded default, a loud failure naming the variable when a
deployment's ``$CAMPUSDX_PSEUDONYM_KEY_FILE`` is missing (campusdx.core.pseudonyms).
"""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from campusdx.core.pseudonyms import pseudonym_key_file


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        pseudonym_key_file()
