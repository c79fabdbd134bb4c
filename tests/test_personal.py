"""Personal values in the gate's artefacts: which fields, how they are masked, and GX results
scrubbed before they are stored (the whole demo warehouse: tests/warehouse/test_personal_data.py)."""

import os
import stat
import subprocess
import sys

from campusdx.core.profile import load_profile
from campusdx.core.settings import Paths
from campusdx.quality.personal import (
    fingerprint,
    fingerprint_key,
    mask,
    personal_fields,
    protect,
    scrub_validation,
)


def test_personal_fields_come_from_the_declarations():
    assert personal_fields(load_profile()) == {"XM": "name", "SFZJH": "id", "CSRQ": "date"}


def test_masks_hide_enough():
    assert mask("11010519491231002X", "id") == "110105************"
    assert mask("E12345678", "id") == "E1*******"  # short numbers: a quarter at most
    assert mask("赵涵明", "name") == "赵**" and mask("王", "name") == "王*"
    assert mask("13912345678", "phone") == "139******78"
    assert mask(None, "id") is None
    assert mask("1949-12-31", "date") == "1949******"  # a birth date: the year, as analysts see it


def test_a_value_a_province_echoes_under_a_field_we_do_not_declare_is_masked():
    kinds, key = personal_fields(load_profile()), b"k" * 32
    number = "11010519491231002X"
    known = ("XH", "XM", "SFZJH")
    assert protect(number, "sfzjh", kinds, key, known=known)[0] == "1101" + "*" * 14  # as "other"
    assert protect(number, None, kinds, key, known=known)[1] == fingerprint(number, key)
    assert protect(number, "SFZJH", kinds, key, known=known)[0] == "110105************"
    assert protect("20", "XH", kinds, key, known=known) == ("20", None)  # not personal: as it is


def test_validation_results_name_no_personal_value():
    """GX result lists (values, rows, counts) of a personal column are masked in place."""
    from types import SimpleNamespace

    number = "110105194912310021"
    outcome = SimpleNamespace(
        expectation_config=SimpleNamespace(
            kwargs={"column_list": ["CSRQ", "SFZJLXM", "SFZJH", "record_key"]}
        ),
        result={
            "partial_unexpected_list": [{"CSRQ": "1949-12-31", "SFZJH": number}],
            "unexpected_index_list": [{"SFZJH": number, "record_key": "K"}],
            "partial_unexpected_counts": [{"value": (None, None, number, "K"), "count": 1}],
        },
    )
    scrub_validation(SimpleNamespace(results=[outcome]), {"SFZJH": "id"})
    assert number not in str(outcome.result) and "K" in str(outcome.result)
    assert outcome.result["partial_unexpected_list"] == [
        {"CSRQ": "1949-12-31", "SFZJH": "110105************"}
    ]


def test_the_fingerprint_key_is_made_once_private_and_shared_by_gates_starting_together(tmp_path):
    paths = Paths(tmp_path / "home")
    code = (
        "import sys; from campusdx.core.settings import Paths; "
        "from campusdx.quality.personal import fingerprint_key;"
    )
    code += "from pathlib import Path; print(fingerprint_key(Paths(Path(sys.argv[1]))).hex())"
    racers = [
        subprocess.Popen([sys.executable, "-c", code, str(paths.home)], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    keys = {r.communicate(timeout=60)[0].strip() for r in racers}
    assert len(keys) == 1 and len(keys.pop()) == 64
    key_file = paths.secrets / "quality-fingerprint.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and not [
        p for p in os.listdir(paths.secrets) if p.endswith(".tmp")
    ]
    key = fingerprint_key(paths)
    assert fingerprint("110105194912310021", key) == fingerprint("110105194912310021", key)
    assert fingerprint("110105194912310021", key) != fingerprint("110105194912310021", b"another key")
