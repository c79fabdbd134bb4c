"""Nothing trusts a manifest or a receipt.

Hostile packages (wrong types for every manifest key, traversal and absolute part names,
symbolic links, huge numbers, odd signatures, bytes that are not JSON or not UTF-8) are fed to
the pre-send check (``inspect_package``), to the simulated province's inbox loop beside a valid
package, and to ``scripts/verify_px_package.py``; hostile receipts to the publisher. Every file
opened is recorded with an audit hook (the ``open`` event of ``open``, ``io.open`` and
``os.open``), so "no file outside the package is opened" is checked, not assumed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib.util
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campusdx.core.profile import load_profile
from campusdx.demo.province import Province
from campusdx.exchange.gateway import DirectoryGateway
from campusdx.exchange.ledger import Ledger
from campusdx.exchange.package import build_package, inspect_package, table_from_rows
from campusdx.exchange.publisher import collect_receipts, publish_dataset

REPO = Path(__file__).resolve().parents[1]
KEY = bytes(range(32))
KEY_HEX = KEY.hex()
KEY_ID = "demo-4161010704"
SCHOOL = "4161010704"
CANARY = "CANARY-SECRET-CONTENT"
PROFILE = load_profile()
ORGS = [
    {"DWH": "1000", "DWMC": "西安科技大学", "DWLBM": "10", "SFSY": "1"},
    {"DWH": "1001", "DWMC": "计算机学院", "DWLBM": "20", "SFSY": "1", "SJDWH": "1000"},
]

# Outside every package: a canary CSV and the auditor's key file, at fixed paths the
# strategies below can name.
OUTSIDE = Path(tempfile.mkdtemp(prefix="cdx-outside-"))
(OUTSIDE / "ZZJG.001.csv").write_text(f"{CANARY}\n{CANARY}\n", encoding="utf-8")
(OUTSIDE / "canary.csv").write_text(f"DWH\n{CANARY}\n", encoding="utf-8")
AUDITOR_KEY = OUTSIDE / "auditor.key"
AUDITOR_KEY.write_text(KEY_HEX + "\n", encoding="ascii")
TRAVERSALS = [
    "../ZZJG.001.csv",
    "../../x/ZZJG.001.csv",
    f"../{OUTSIDE.name}/ZZJG.001.csv",
    str(OUTSIDE / "ZZJG.001.csv"),
    str(OUTSIDE / "canary.csv"),
    str(AUDITOR_KEY),
    "/etc/passwd",
    "..",
    ".",
    "",
    "./ZZJG.001.csv",
    "ZZJG.001.csv/..",
    "ZZJG.001.csv\x00",
    "ZZJG.001.csv ",
    "ZZJG.000.csv",
    "zzjg.001.csv",
    "ZZJG.001.csv\\..\\x",
    "\ud800.csv",
    "manifest.sig",
    "ＺＺＪＧ.001.csv",
]

# --------------------------------------------------------------------------- recording opens

_opened: list[str] | None = None
_recording_thread: int | None = None
"""The thread recording: the session's background runs (tests/cycles.py) open files meanwhile
in threads of their own (psutil reads /proc), and the code under test runs in this one."""


def _audit(event: str, args: tuple) -> None:
    if (
        event == "open"
        and _opened is not None
        and threading.get_ident() == _recording_thread
        and isinstance(args[0], str | bytes | os.PathLike)
    ):
        _opened.append(os.path.realpath(os.fsdecode(args[0])))


sys.addaudithook(_audit)
_PYTHON_ROOTS = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(REPO)}
_PYTHON = (*(os.path.realpath(p) for p in _PYTHON_ROOTS), "/usr/lib", "/usr/share", "/dev/")


@contextlib.contextmanager
def recording():
    """Every path opened inside the block (resolved, so a followed link shows its target)."""
    global _opened, _recording_thread
    _opened, _recording_thread = [], threading.get_ident()
    try:
        yield _opened
    finally:
        _opened, _recording_thread = None, None


def outside(opened: list[str], *allowed: Path | str) -> list[str]:
    """The opened paths that are neither under ``allowed`` nor Python's own files."""
    roots = tuple(os.path.realpath(a) for a in allowed)
    return [
        p
        for p in opened
        if not any(p == r or p.startswith(r.rstrip("/") + "/") for r in roots) and not p.startswith(_PYTHON)
    ]


# --------------------------------------------------------------------------- packages


def build_valid(out_dir: Path, sequence: int = 1, batch_id: str | None = None) -> Path:
    return build_package(
        PROFILE,
        "ZZJG",
        "FULL",
        table_from_rows(PROFILE, "ZZJG", ORGS),
        school_code=SCHOOL,
        sequence=sequence,
        batch_id=batch_id or str(uuid.uuid4()),
        as_of="2026-11-22",
        generated_at="2026-11-22 03:00:00",
        key=KEY,
        key_id=KEY_ID,
        out_dir=out_dir,
    ).path


def sign_file(package: Path, data: bytes) -> None:
    signature = hmac.new(KEY, data, "sm3").hexdigest()
    (package / "manifest.sig").write_text(
        json.dumps({"alg": "HMAC-SM3", "key_id": KEY_ID, "signature": signature})
    )


def write_manifest(package: Path, manifest: object, *, sign: bool = True) -> bytes:
    data = json.dumps(manifest, indent=2).encode("utf-8")  # ASCII escapes keep lone surrogates
    (package / "manifest.json").write_bytes(data)
    if sign:
        sign_file(package, data)
    return data


# --------------------------------------------------------------------------- strategies

HOSTILE_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(TRAVERSALS),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
MANIFEST_KEYS = list(PROFILE.manifest_keys)
FILE_KEYS = list(PROFILE.file_keys)
SIGNATURES = [
    {"alg": "HMAC-SM3", "key_id": KEY_ID, "signature": "签" * 64},
    {"alg": "HMAC-SM3", "key_id": KEY_ID, "signature": "abc"},
    {"alg": "HMAC-SM3", "key_id": KEY_ID, "signature": "g" * 64},
    {"alg": "HMAC-SM3", "key_id": KEY_ID, "signature": "a" * 63},
    {"alg": "HMAC-SM3", "key_id": KEY_ID, "signature": 12},
    {"alg": ["HMAC-SM3"], "key_id": KEY_ID, "signature": "a" * 64},
    {"alg": "HMAC-SM3", "key_id": ["x"], "signature": "a" * 64},
    {"alg": "HMAC-SM3", "key_id": "someone-else", "signature": "a" * 64},
    {"alg": "HMAC-MD5", "key_id": KEY_ID, "signature": "a" * 64},
    [1, 2],
    "signature",
]

OPS = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(MANIFEST_KEYS), HOSTILE_VALUE),
    st.tuples(st.just("del"), st.sampled_from(MANIFEST_KEYS)),
    st.tuples(st.just("extra"), st.text(max_size=10), HOSTILE_VALUE),
    st.tuples(st.just("file_set"), st.sampled_from(FILE_KEYS), HOSTILE_VALUE),
    st.tuples(st.just("file_del"), st.sampled_from(FILE_KEYS)),
    st.tuples(st.just("files"), HOSTILE_VALUE),
    st.tuples(st.just("name"), st.sampled_from(TRAVERSALS)),
    st.tuples(st.just("dataset"), st.sampled_from([*TRAVERSALS, "../../x/ZZJG", str(OUTSIDE / "ZZJG")])),
    st.tuples(st.just("sig"), st.sampled_from(range(len(SIGNATURES)))),
    st.tuples(st.just("sig_bytes"), st.binary(max_size=40)),
    st.tuples(st.just("link"), st.sampled_from(["ZZJG.001.csv", "manifest.json", "manifest.sig"])),
    st.tuples(st.just("raw"), st.binary(max_size=60)),
    st.tuples(
        st.just("raw"),
        st.sampled_from([b"\xff\xfe{}", b"[" * 100_000, b'{"sequence": 1' + b"1" * 5000 + b"}", b"[]", b"7"]),
    ),
)


def hostile(package: Path, ops: list[tuple]) -> None:
    """Apply ``ops`` to the valid package at ``package``: the manifest is rewritten and signed
    again (so its validation, not the signature, is what must stop it), unless an op replaces
    the signature or the bytes themselves."""
    manifest = json.loads((package / "manifest.json").read_bytes())
    raw: bytes | None = None
    signature: object = None
    links = []
    for op in ops:
        kind = op[0]
        files = manifest.get("files")
        first = files[0] if isinstance(files, list) and files and isinstance(files[0], dict) else None
        if kind == "set":
            manifest[op[1]] = op[2]
        elif kind == "del":
            manifest.pop(op[1], None)
        elif kind == "extra":
            manifest[f"x-{op[1]}"] = op[2]
        elif kind == "file_set" and first is not None:
            first[op[1]] = op[2]
        elif kind == "file_del" and first is not None:
            first.pop(op[1], None)
        elif kind == "files":
            manifest["files"] = op[1]
        elif kind == "name" and first is not None:
            first["name"] = op[1]
        elif kind == "dataset":
            manifest["dataset"] = op[1]
            if first is not None:
                first["name"] = f"{op[1]}.001.csv"
        elif kind == "sig":
            signature = SIGNATURES[op[1]]
        elif kind == "sig_bytes":
            signature = op[1]
        elif kind == "link":
            links.append(op[1])
        elif kind == "raw":
            raw = op[1]
    data = write_manifest(package, manifest) if raw is None else raw
    if raw is not None:
        (package / "manifest.json").write_bytes(raw)
        sign_file(package, raw)
    if isinstance(signature, bytes):
        (package / "manifest.sig").write_bytes(signature)
    elif signature is not None:
        (package / "manifest.sig").write_text(json.dumps(signature))
    for name in links:
        (package / name).unlink(missing_ok=True)
        (package / name).symlink_to(OUTSIDE / "ZZJG.001.csv")
    del data


@pytest.fixture(scope="module")
def valid_package(tmp_path_factory) -> Path:
    return build_valid(tmp_path_factory.mktemp("valid"))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


def copy_package(valid: Path, scratch: Path, name: str | None = None) -> Path:
    target = Path(tempfile.mkdtemp(dir=scratch)) / (name or valid.name)
    shutil.copytree(valid, target)
    return target


def no_secret(text: str) -> bool:
    return CANARY not in text and KEY_HEX not in text.lower()


HOSTILE = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# --------------------------------------------------------------------------- (a) inspect_package


@HOSTILE
@given(ops=st.lists(OPS, min_size=1, max_size=3))
def test_inspect_package_survives_hostile_manifests_and_opens_nothing_outside(valid_package, scratch, ops):
    package = copy_package(valid_package, scratch)
    hostile(package, ops)
    with recording() as opened:
        insp = inspect_package(package, PROFILE, {KEY_ID: KEY}.get)
    assert outside(opened, package) == []
    assert all(no_secret(str(p)) for p in insp.problems)
    if insp.manifest is None:
        assert insp.problems and insp.parts == []


# --------------------------------------------------------------------------- (b) the province


def code_sets() -> dict[str, set[str]]:
    return {cs.id: set(cs.codes) for cs in PROFILE.code_sets.values() if cs.codes}


@HOSTILE
@given(ops=st.lists(OPS, min_size=1, max_size=3), named=st.booleans())
def test_province_answers_a_hostile_package_and_still_takes_the_valid_one(valid_package, scratch, ops, named):
    root = Path(tempfile.mkdtemp(dir=scratch))
    gateway = DirectoryGateway(root / "gateway", PROFILE.gateway)
    gateway.upload(build_valid(root / "outbox"))
    name = f"{SCHOOL}-ZZJG-F-000009" if named else "not a package; rm -rf"
    bad = copy_package(valid_package, scratch, name)
    hostile(bad, ops)
    shutil.copytree(bad, gateway.inbox / name, symlinks=True)
    province = Province(root / "gateway", root / "province", PROFILE, {KEY_ID: KEY}, code_sets())
    try:
        with recording() as opened:
            receipts = province.process_inbox()
        by_id = {r["package_id"]: r for r in receipts}
        assert by_id[f"{SCHOOL}-ZZJG-F-000001"]["status"] == "ACCEPTED"
        assert sorted(r["DWH"] for r in province.current("ZZJG")) == ["1000", "1001"]
        if named:
            assert by_id[name]["status"] in ("REJECTED", "DUPLICATE")
            assert no_secret(json.dumps(by_id[name], ensure_ascii=False))
        else:
            assert set(by_id) == {f"{SCHOOL}-ZZJG-F-000001"}
        assert outside(opened, root) == []
        assert province.process_inbox() == []  # answered once, not on every pass
    finally:
        province.close()


# --------------------------------------------------------------------------- (c) the verify script


def _script():
    spec = importlib.util.spec_from_file_location(
        "verify_px_package", REPO / "scripts" / "verify_px_package.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()


def run_script(package: Path, *extra: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = SCRIPT.main([str(package), "--key-file", str(AUDITOR_KEY), *extra])
    return code, out.getvalue() + err.getvalue()


@HOSTILE
@given(ops=st.lists(OPS, min_size=1, max_size=3))
def test_verify_script_survives_hostile_manifests_and_prints_nothing_it_should_not(
    valid_package, scratch, ops
):
    package = copy_package(valid_package, scratch)
    hostile(package, ops)
    with recording() as opened:
        code, output = run_script(package)
    assert code in (0, 1, 2)
    assert no_secret(output), output
    assert outside(opened, package, AUDITOR_KEY) == []
    assert opened.count(os.path.realpath(AUDITOR_KEY)) == 1  # read once, as the key


# --------------------------------------------------------------------------- regressions


def traversal_manifest(package: Path, dataset: str, name: str, target: Path | None) -> None:
    """A manifest naming a file outside the package, with the digests of that file if it exists
    (a forger who knows the file can list them)."""
    manifest = json.loads((package / "manifest.json").read_bytes())
    data = target.read_bytes() if target is not None and target.exists() else b""
    manifest["dataset"] = dataset
    manifest["files"] = [
        {
            "name": name,
            "rows": 1,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "sm3": hashlib.new("sm3", data).hexdigest(),
        }
    ]
    manifest["total_rows"] = 1
    write_manifest(package, manifest)


@pytest.mark.parametrize(
    "dataset,name",
    [
        ("../../x/XSJBXX", "../../x/XSJBXX.001.csv"),
        (str(OUTSIDE / "XSJBXX"), str(OUTSIDE / "XSJBXX.001.csv")),
        ("XSJBXX", str(OUTSIDE / "XSJBXX.001.csv")),
    ],
    ids=["relative", "absolute", "absolute-file"],  # the same in every process (pytest-xdist)
)
def test_traversal_is_refused_the_same_whether_or_not_the_outside_file_exists(
    valid_package, scratch, dataset, name
):
    outputs = []
    for content in (None, b"XH\n1\n", b"XH\n" + b"9" * 5000 + b"\n"):
        package = copy_package(valid_package, scratch)
        (package.parent / "x").mkdir(exist_ok=True)
        target = (package / name).resolve() if not os.path.isabs(name) else Path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            target.unlink(missing_ok=True)
        else:
            target.write_bytes(content)
        traversal_manifest(package, dataset, name, target)
        with recording() as opened:
            insp = inspect_package(package, PROFILE, {KEY_ID: KEY}.get)
            code, output = run_script(package)
        assert str(target) not in opened and os.path.realpath(target) not in opened
        assert insp.manifest is None and {p.rule for p in insp.problems} == {"PX-E001"}
        assert code == 1
        outputs.append(([str(p) for p in insp.problems], output.replace(package.name, "PKG")))
    assert outputs[0] == outputs[1] == outputs[2]  # no oracle: the same words in all three cases


def test_verify_script_never_prints_the_auditors_key(valid_package, scratch):
    package = copy_package(valid_package, scratch)
    traversal_manifest(package, "ZZJG", str(AUDITOR_KEY), AUDITOR_KEY)
    code, output = run_script(package)
    assert code == 1 and KEY_HEX not in output.lower()
    # the same key file linked into the package under the part's own name
    package = copy_package(valid_package, scratch)
    traversal_manifest(package, "ZZJG", "ZZJG.001.csv", AUDITOR_KEY)
    (package / "ZZJG.001.csv").unlink()
    (package / "ZZJG.001.csv").symlink_to(AUDITOR_KEY)
    code, output = run_script(package)
    assert code == 1 and KEY_HEX not in output.lower() and "symbolic link" in output
    insp = inspect_package(package, PROFILE, {KEY_ID: KEY}.get)
    assert [p.rule for p in insp.problems] == ["PX-E003"] and insp.parts == []


def test_a_hard_link_to_a_file_outside_is_refused_by_both_checks(valid_package, scratch):
    package = copy_package(valid_package, scratch)
    traversal_manifest(package, "ZZJG", "ZZJG.001.csv", AUDITOR_KEY)
    (package / "ZZJG.001.csv").unlink()
    try:
        os.link(AUDITOR_KEY, package / "ZZJG.001.csv")  # another name of the auditor's key file
    except OSError as exc:  # another file system: a hard link cannot be made here
        pytest.skip(f"cannot hard-link across file systems here: {exc}")
    code, output = run_script(package)
    assert code == 1 and KEY_HEX not in output.lower() and "hard links" in output
    insp = inspect_package(package, PROFILE, {KEY_ID: KEY}.get)
    assert [p.rule for p in insp.problems] == ["PX-E003"] and insp.parts == []
    assert "hard links" in str(insp.problems[0])


def test_verify_script_shows_a_header_only_when_it_is_made_of_field_codes(valid_package, scratch):
    package = copy_package(valid_package, scratch)
    part = package / "ZZJG.001.csv"
    part.write_bytes(part.read_bytes().replace(b"DWH,DWMC,", f"{KEY_HEX},DWMC,".encode(), 1))
    manifest = json.loads((package / "manifest.json").read_bytes())
    data = part.read_bytes()
    manifest["files"][0].update(
        bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), sm3=hashlib.new("sm3", data).hexdigest()
    )
    write_manifest(package, manifest)
    code, output = run_script(package)
    assert code == 1 and "header does not match" in output and KEY_HEX not in output.lower()
    part.write_bytes(data.replace(f"{KEY_HEX},DWMC,".encode(), b"DWMC,DWH,", 1))
    data = part.read_bytes()
    manifest["files"][0].update(
        bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), sm3=hashlib.new("sm3", data).hexdigest()
    )
    write_manifest(package, manifest)
    code, output = run_script(package)
    assert code == 1 and "'DWMC', 'DWH'" in output


@pytest.mark.parametrize(
    "edit,field",
    [
        (lambda m: m.update(mode=[]), "mode"),
        (lambda m: m.update(dataset=[]), "dataset"),
        (lambda m: m.update(sequence=10**7), "sequence"),
        (lambda m: m["files"][0].update(sha256="ab"), "files[0].sha256"),
        (lambda m: m.pop("batch_id"), "batch_id"),
    ],
)
def test_malformed_manifest_is_e001_naming_the_field(valid_package, scratch, edit, field):
    package = copy_package(valid_package, scratch)
    manifest = json.loads((package / "manifest.json").read_bytes())
    edit(manifest)
    write_manifest(package, manifest)
    insp = inspect_package(package, PROFILE, {KEY_ID: KEY}.get)
    assert {p.rule for p in insp.problems} == {"PX-E001"}
    assert any(field in p.message for p in insp.problems), insp.problems


def test_non_ascii_signature_is_e002_not_a_crash(valid_package, scratch):
    package = copy_package(valid_package, scratch)
    sig = json.loads((package / "manifest.sig").read_bytes())
    (package / "manifest.sig").write_text(json.dumps({**sig, "signature": "é" * 64}))
    insp = inspect_package(package, PROFILE, {KEY_ID: KEY}.get)
    assert [p.rule for p in insp.problems] == ["PX-E002"]
    assert run_script(package)[0] == 1


def test_province_keeps_serving_every_school_after_a_package_with_a_list_for_dataset(scratch):
    root = Path(tempfile.mkdtemp(dir=scratch))
    gateway = DirectoryGateway(root / "gateway", PROFILE.gateway)
    bad = build_valid(root / "outbox-bad", sequence=2)
    manifest = json.loads((bad / "manifest.json").read_bytes())
    write_manifest(bad, {**manifest, "dataset": [], "sequence": []})
    gateway.upload(bad)
    gateway.upload(build_valid(root / "outbox"))
    province = Province(root / "gateway", root / "province", PROFILE, {KEY_ID: KEY}, code_sets())
    try:
        receipts = {r["package_id"]: r for r in province.process_inbox()}
    finally:
        province.close()
    assert receipts[f"{SCHOOL}-ZZJG-F-000001"]["status"] == "ACCEPTED"
    rejected = receipts[f"{SCHOOL}-ZZJG-F-000002"]
    assert rejected["status"] == "REJECTED" and {e["rule"] for e in rejected["errors"]} == {"PX-E001"}
    assert rejected["batch_id"] == manifest["batch_id"]  # the school can match its answer


# --------------------------------------------------------------------------- receipts


@pytest.fixture
def sent(exchange_home):
    """One ZZJG package published and waiting for its receipt."""
    result = publish_dataset("ZZJG", table_from_rows(PROFILE, "ZZJG", ORGS), as_of="2026-11-22")
    return exchange_home, result


def valid_receipt(result) -> dict:
    return {
        "package_id": result.package_id,
        "batch_id": result.batch_id,
        "status": "ACCEPTED",
        "received_at": "2026-11-22 03:01:10",
        "rows_received": 2,
        "rows_accepted": 2,
        "rows_rejected": 0,
        "errors": [],
    }


RECEIPT_KEYS = ["package_id", "batch_id", "status", "received_at", "rows_received", "rows_accepted",
                "rows_rejected", "errors"]  # fmt: skip
BAD_FINDINGS = st.one_of(
    HOSTILE_VALUE.filter(lambda v: not isinstance(v, list)),
    st.lists(
        st.fixed_dictionaries(
            {
                "rule": st.one_of(st.sampled_from(["PX-E999x", "", "../x"]), st.integers()),
                "file": st.one_of(st.sampled_from(TRAVERSALS[:8]), st.integers()),
                "line": st.one_of(st.integers(max_value=0), st.text(max_size=3), st.floats()),
            }
        ),
        min_size=1,
        max_size=3,
    ),
)
RECEIPT_BREAKERS = st.one_of(
    st.tuples(st.just("del"), st.sampled_from(["package_id", "batch_id", "status"])),
    st.tuples(
        st.just("set"), st.just("package_id"), st.one_of(HOSTILE_VALUE, st.just(f"{SCHOOL}-ZZJG-F-000002"))
    ),
    st.tuples(st.just("set"), st.just("batch_id"), HOSTILE_VALUE.filter(lambda v: v is not None)),
    st.tuples(st.just("set"), st.just("status"), HOSTILE_VALUE),
    st.tuples(
        st.just("set"),
        st.just("received_at"),
        st.one_of(st.integers(), st.text(min_size=20), st.just("2026-13-45 99:00:00")),
    ),
    st.tuples(
        st.just("set"),
        st.sampled_from(["rows_received", "rows_accepted", "rows_rejected"]),
        st.one_of(
            st.integers(max_value=-1),
            st.integers(min_value=2**41),
            st.floats(),
            st.text(max_size=5),
            st.booleans(),
        ),
    ),
    st.tuples(st.just("set"), st.just("errors"), BAD_FINDINGS),
    st.tuples(st.just("partial"), st.booleans()),
    st.tuples(
        st.just("raw"),
        st.one_of(
            st.binary(max_size=40), st.sampled_from([b"\xff{", b"[" * 100_000, b"1" * 5000, b"[]", b"null"])
        ),
    ),
)


def apply_receipt(receipt: dict, op: tuple) -> bytes:
    if op[0] == "raw":
        return op[1]
    if op[0] == "del":
        receipt.pop(op[1])
    elif op[0] == "set":
        receipt[op[1]] = op[2]
    elif op[0] == "partial":  # PARTIAL that names no rejected row, or whose counts disagree
        receipt.update(status="PARTIAL", rows_rejected=1, rows_accepted=1 if op[1] else 5)
        if not op[1]:
            receipt["errors"] = [{"rule": "PX-E011", "file": "ZZJG.001.csv", "line": 2, "message": "x"}]
    return json.dumps(receipt).encode("utf-8")


@HOSTILE
@given(op=RECEIPT_BREAKERS, extra=st.dictionaries(st.text(max_size=8), HOSTILE_VALUE, max_size=2))
def test_hostile_receipts_leave_the_package_pending_with_a_clear_message(sent, op, extra):
    home, result = sent
    receipt = {**{k: v for k, v in extra.items() if k not in RECEIPT_KEYS}, **valid_receipt(result)}
    data = apply_receipt(receipt, op)
    path = home.gateway / "receipts" / f"{result.package_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    [got] = collect_receipts(timeout_s=0, poll_s=0)
    assert got.action == "unusable_receipt", (op, got)
    assert f"receipts/{result.package_id}.json" in got.message and "pending" in got.message
    assert no_secret(got.message)
    with Ledger(home.exchange / "ledger.sqlite") as ledger:
        [entry] = ledger.packages("ZZJG")
        assert (entry.status, entry.receipt) == ("SENT", None)


def test_after_hostile_receipts_a_valid_one_is_recorded(sent):
    home, result = sent
    path = home.gateway / "receipts" / f"{result.package_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"[" * 50_000)
    assert collect_receipts(timeout_s=0, poll_s=0)[0].action == "unusable_receipt"
    path.unlink()
    path.symlink_to(AUDITOR_KEY)  # a link to a secret is not followed
    [got] = collect_receipts(timeout_s=0, poll_s=0)
    assert got.action == "unusable_receipt" and "symbolic link" in got.message and no_secret(got.message)
    path.unlink()
    path.write_text(json.dumps({**valid_receipt(result), "x-extra": {"ignored": True}}))
    [got] = collect_receipts(timeout_s=0, poll_s=0)
    assert (got.action, got.status) == ("receipt", "ACCEPTED")
    assert "x-extra" not in got.receipt


def test_validate_receipt_rules():
    from campusdx.exchange.receipts import ReceiptProblem, validate_receipt

    good = {"package_id": f"{SCHOOL}-ZZJG-F-000001", "batch_id": None, "status": "REJECTED"}
    assert validate_receipt(good, "r.json", package_id=good["package_id"]) == good
    with pytest.raises(ReceiptProblem, match=r"r\.json answers another package"):
        validate_receipt(good, "r.json", package_id=f"{SCHOOL}-ZZJG-F-000002")
    partial = {
        **good,
        "status": "PARTIAL",
        "errors": [{"rule": "PX-W101", "file": "ZZJG.001.csv", "line": 2}],
    }
    with pytest.raises(ReceiptProblem, match="names no rejected row"):
        validate_receipt(partial, "r.json", package_id=good["package_id"])


def test_sftp_receipts_are_read_bounded_and_checked_like_directory_ones(monkeypatch):
    import stat as stat_mod

    from campusdx.exchange.receipts import ReceiptProblem
    from campusdx.exchange.sftp import SftpGateway, SftpSettings

    files = {"receipts/A.json": (stat_mod.S_IFREG, b"[" * 50_000), "receipts/B.json": (stat_mod.S_IFIFO, b"")}
    files["receipts/C.json"] = (stat_mod.S_IFREG, b'{"status": "ACCEPTED"}')

    class FakeSftp:
        def stat(self, path):
            if path not in files:
                raise FileNotFoundError(path)
            return type("Attr", (), {"st_mode": files[path][0]})()

        def open(self, path, mode):
            return contextlib.nullcontext(io.BytesIO(files[path][1]))

        def close(self):
            pass

    gateway = SftpGateway(SftpSettings("h", 22, "u", "k", "kh", remote_root="."), PROFILE.gateway)
    monkeypatch.setattr(gateway, "_connect", lambda: (FakeSftp(), FakeSftp()))
    monkeypatch.setattr(gateway, "_path", lambda *parts: "/".join(parts))
    assert gateway.receipt("missing") is None
    with pytest.raises(ReceiptProblem, match=r"receipts/A\.json is not JSON"):
        gateway.receipt("A")
    with pytest.raises(ReceiptProblem, match=r"receipts/B\.json is not a regular file"):
        gateway.receipt("B")
    assert gateway.receipt("C") == {"status": "ACCEPTED"}


def test_a_package_the_checks_fail_on_is_rejected_once_and_the_loop_goes_on(scratch, monkeypatch):
    root = Path(tempfile.mkdtemp(dir=scratch))
    gateway = DirectoryGateway(root / "gateway", PROFILE.gateway)
    gateway.upload(build_valid(root / "outbox-1", sequence=1))
    gateway.upload(build_valid(root / "outbox-2", sequence=2))
    province = Province(root / "gateway", root / "province", PROFILE, {KEY_ID: KEY}, code_sets())
    real = Province.process

    def flaky(self, path):
        if path.name.endswith("-000001"):
            raise RuntimeError("a bug in the checks")
        return real(self, path)

    monkeypatch.setattr(Province, "process", flaky)
    try:
        first, second = province.process_inbox()
        assert (first["status"], first["errors"][0]["rule"]) == ("REJECTED", "PX-E001") and first["batch_id"]
        assert (second["status"], second["errors"][0]["rule"]) == ("REJECTED", "PX-E007")  # judged after it
        assert province.process_inbox() == []  # answered: not judged again on every pass
    finally:
        province.close()


def test_keys_a_profile_variant_requires_are_checked_too(valid_package):
    import dataclasses

    variant = dataclasses.replace(PROFILE, manifest_keys=(*PROFILE.manifest_keys, "region"))
    insp = inspect_package(valid_package, variant, {KEY_ID: KEY}.get)
    assert [str(p) for p in insp.problems] == ["PX-E001 manifest.json: required key missing: region"]
    assert inspect_package(valid_package, PROFILE, {KEY_ID: KEY}.get).problems == []
