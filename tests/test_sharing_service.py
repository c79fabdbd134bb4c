"""The sharing service's own state and transport, without a warehouse: the audit chain and its
check, secrets, and HTTPS (plain HTTP only on the loopback address)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import sqlite3
import threading
import time

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from campusdx.core.settings import Paths
from campusdx.service.app import create_app
from campusdx.service.server import ServeRefused, check_listen
from campusdx.service.store import Store, StoreError, verify_chain
from tests.sharing import campusdx_cli


@pytest.fixture
def store(tmp_path):
    s = Store(Paths(tmp_path))
    yield s
    s.close()


def _tamper(store: Store) -> sqlite3.Connection:
    """The database opened as someone with write access to the file would: the append-only
    triggers dropped first (they stop mistakes, not an attacker; the chain is what tells)."""
    db = sqlite3.connect(store.path)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    return db


def _entries(store: Store, n: int) -> None:
    for i in range(n):
        store.audit({"principal": "app_x", "path": f"/v1/data/orgs?{i}", "status": 200})


def test_the_chain_verifies_and_names_an_edited_entry(store, tmp_path):
    _entries(store, 5)
    assert verify_chain(Paths(tmp_path)).ok
    assert campusdx_cli(tmp_path, "audit", "--verify").returncode == 0
    with sqlite3.connect(store.path) as db, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit SET entry = replace(entry, '200', '403') WHERE seq = 3")
    assert verify_chain(Paths(tmp_path)).ok
    with _tamper(store) as db:
        db.execute("UPDATE audit SET entry = replace(entry, '200', '403') WHERE seq = 3")
    report = verify_chain(Paths(tmp_path))
    assert report.problems == ["entry 3: its content does not match its hash (edited)"]
    done = campusdx_cli(tmp_path, "audit", "--verify")
    assert done.returncode == 1 and "entry 3" in done.stderr and "BROKEN" in done.stdout


def test_a_deleted_entry_is_named_in_the_middle_and_at_the_end(store, tmp_path):
    _entries(store, 5)
    with _tamper(store) as db:
        db.execute("DELETE FROM audit WHERE seq = 2")
    assert verify_chain(Paths(tmp_path)).problems[0] == "entry 2: missing (the next entry present is 3)"
    with _tamper(store) as db:
        db.execute("DELETE FROM audit WHERE seq = 5")
    problems = verify_chain(Paths(tmp_path)).problems
    assert any(p.startswith("entry 5: the head names it as the last entry") for p in problems), problems
    # pointing the head at entry 4 as well, as one cutting the newest entries would: its signature tells
    with sqlite3.connect(store.path) as db:
        (digest,) = db.execute("SELECT hash FROM audit WHERE seq = 4").fetchone()
        db.execute("UPDATE audit_head SET seq = 4, hash = ?", (digest,))
    problems = verify_chain(Paths(tmp_path)).problems
    assert "entry 4: the head naming it as the last entry is not signed by the key" in problems, problems


def test_a_rewritten_chain_without_the_key_does_not_verify(store, tmp_path):
    """Recomputing the hashes needs the chain key (under secrets/), not just write access."""
    import hashlib
    import json

    _entries(store, 3)
    with _tamper(store) as db:
        prev = "0" * 64
        for seq, at, entry in db.execute("SELECT seq, at, entry FROM audit ORDER BY seq").fetchall():
            forged = entry.replace("app_x", "app_y")
            digest = hashlib.sha256(json.dumps([prev, seq, at, forged]).encode()).hexdigest()
            db.execute(
                "UPDATE audit SET entry = ?, prev = ?, hash = ? WHERE seq = ?", (forged, prev, digest, seq)
            )
            prev = digest
        db.execute("UPDATE audit_head SET hash = ?", (prev,))
    assert not verify_chain(Paths(tmp_path)).ok


def test_a_lost_chain_key_is_never_replaced_silently(store, tmp_path):
    _entries(store, 2)
    store.close()
    (tmp_path / "secrets" / "audit-chain.key").unlink()
    with pytest.raises(StoreError, match=r"chain key .* is missing"):
        Store(Paths(tmp_path))


def test_entries_written_from_many_threads_form_one_chain(store, tmp_path):
    threads = [threading.Thread(target=_entries, args=(store, 20)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = verify_chain(Paths(tmp_path))
    assert report.ok and report.entries == 160, report.problems


def test_a_secret_is_kept_only_as_a_slow_hash_and_checked(store):
    principal, secret = store.add_principal("一卡通", "application", "402")
    assert store.check_secret(principal.id, secret) == principal
    assert store.check_secret(principal.id, secret + "x") is None
    assert store.check_secret("app_unknown", secret) is None
    stored = b"".join(p.read_bytes() for p in store.path.parent.glob(store.path.name + "*"))
    assert secret.encode() not in stored
    store.revoke_principal(principal.id)
    assert store.check_secret(principal.id, secret) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "example.edu.cn"])
def test_plain_http_is_refused_beyond_the_loopback_address(host):
    with pytest.raises(ServeRefused, match="refusing to serve plain HTTP"):
        check_listen(host, None, None)
    check_listen(host, "cert.pem", "key.pem")
    check_listen("127.0.0.1", None, None)
    with pytest.raises(ServeRefused, match="both"):
        check_listen(host, "cert.pem", None)


def test_campusdx_serve_refuses_plain_http_on_all_addresses(tmp_path):
    done = campusdx_cli(tmp_path, "serve", "--host", "0.0.0.0", "--port", "1")
    assert done.returncode == 2 and "refusing to serve plain HTTP on 0.0.0.0" in done.stderr


def _certificates(directory):
    """A CA and a server certificate for 127.0.0.1 signed by it (PEM files)."""
    now = dt.datetime.now(dt.UTC)

    def make(subject, issuer, key, signer, ca: bool, san=None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = make("campusdx test CA", "campusdx test CA", ca_key, ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make(
        "127.0.0.1",
        "campusdx test CA",
        key,
        ca_key,
        False,
        [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    files = {name: directory / f"{name}.pem" for name in ("ca", "cert", "key")}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_service_answers_over_tls_with_a_certificate_the_test_made(tmp_path):
    files = _certificates(tmp_path)
    home = tmp_path / "home"
    app = create_app(Paths(home))
    principal, secret = app.state.service.store.add_principal("审计员", "auditor")
    port = _free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(files["cert"]),
        ssl_keyfile=str(files["key"]),
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        base = f"https://127.0.0.1:{port}"
        with httpx.Client(verify=str(files["ca"]), base_url=base) as client:
            r = client.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", "client_id": principal.id, "client_secret": secret},
            )
            assert r.status_code == 200
            audit = client.get("/v1/audit", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
            assert audit.status_code == 200 and audit.json()[0]["path"] == "/oauth/token"
        with httpx.Client(base_url=base) as untrusting, pytest.raises(httpx.ConnectError):
            untrusting.get("/openapi.json")  # the certificate is checked: only our CA vouches for it
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as plain, pytest.raises(httpx.HTTPError):
            plain.get("/openapi.json")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_query_past_its_deadline_is_stopped(tmp_path):
    """The watchdog interrupts a query that outruns the service's query time cap."""
    import duckdb

    from campusdx.service.query import QueryTimeout, Reader

    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    reader = Reader(Paths(tmp_path), timeout_s=0.3)
    con = duckdb.connect(str(path), read_only=True)
    with pytest.raises(QueryTimeout, match=r"longer than 0\.3 s"):  # uninterrupted, it would answer
        reader._run(con, "select count(*) from range(100000000000) a", [])
    assert reader._run(con, "select 42", [])[1] == [(42,)]


def test_the_docs_page_loads_its_scripts_from_the_service(tmp_path):
    """/docs renders with no Internet: Swagger UI comes from the npm package make installs."""
    from fastapi.testclient import TestClient

    from campusdx.service.app import SWAGGER_UI

    client = TestClient(create_app(Paths(tmp_path)))
    page = client.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    assert (SWAGGER_UI / "swagger-ui-bundle.js").is_file(), "make installs Swagger UI (npm ci)"
    assert "cdn.jsdelivr.net" not in page.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
