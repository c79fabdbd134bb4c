"""The committed feed contracts are exactly what the profile's datasets.yaml generates."""

from campusdx.pipeline.feedgen import FEEDS_FILE, render


def test_feed_contracts_are_up_to_date():
    assert FEEDS_FILE.read_text(encoding="utf-8") == render(), (
        "run `campusdx gen-feeds` and commit the result"
    )


def test_contract_lists_profile_fields_in_order():
    import yaml

    from campusdx.core.profile import load_profile

    models = {m["name"]: m for m in yaml.safe_load(render())["models"]}
    profile = load_profile()
    for code in ("ZZJG", "JZGJBXX", "XSJBXX"):
        model = models[f"feed_px__{code.lower()}"]
        assert [c["name"] for c in model["columns"]] == list(profile.dataset(code).field_codes)
        assert model["config"]["contract"]["enforced"] is True


def test_dbt_sources_match_the_source_declarations():
    from campusdx.core.declarations import load_systems
    from campusdx.pipeline.sourcegen import path_for, render

    for decl in load_systems():
        assert path_for(decl.system).read_text(encoding="utf-8") == render(decl), (
            f"run `campusdx gen-sources`: dbt sources of {decl.system} differ from schemas/sources"
        )
