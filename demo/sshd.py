"""A real OpenSSH server on 127.0.0.1 for the SFTP gateway: the tests' peer and the SFTP demo.

    python -m demo.sshd start --dir DIR --root GATEWAY   # prints the connection as JSON; runs until killed
    python -m demo.sshd check                             # exit 0 when sshd and ssh-keygen are here

``start`` makes, under DIR, a host key, a client key (the school's), ``known_hosts`` pinning the
host key, ``authorized_keys`` and an ``sshd_config`` that allows only that key, only SFTP, and
only inside GATEWAY (``ChrootDirectory`` when running as root). It binds 127.0.0.1 on a free port.
``LocalSshd.drop_connections`` cuts the open sessions from the server's side (fault tests).
``scripts/install-openssh.sh`` installs OpenSSH from Debian's packages where it is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")


class SshdUnavailable(RuntimeError):
    """OpenSSH's server is not installed here (``scripts/install-openssh.sh`` installs it)."""


@dataclass(frozen=True)
class SftpEndpoint:
    """How to reach the server: what the school's SFTP settings hold."""

    host: str
    port: int
    user: str
    key_file: str
    known_hosts: str
    root: str  # the gateway directory on the server's side
    remote_root: str  # the same directory as the SFTP client sees it ("/" under a chroot)


def sshd_binary() -> str:
    for candidate in (shutil.which("sshd"), *SSHD_CANDIDATES):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SshdUnavailable("OpenSSH server (sshd) not found: run scripts/install-openssh.sh")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path, comment: str) -> None:
    if not path.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True,
            capture_output=True,
        )


class LocalSshd:
    """One sshd process; ``with LocalSshd(dir, root) as endpoint: ...`` stops it at the end."""

    def __init__(self, directory: Path | str, root: Path | str) -> None:
        self.dir = Path(directory)
        self.root = Path(root)
        self.process: subprocess.Popen | None = None
        self.endpoint: SftpEndpoint | None = None

    def start(self, timeout_s: float = 15.0) -> SftpEndpoint:
        binary = sshd_binary()
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.root.mkdir(parents=True, exist_ok=True)
        host_key, client_key = self.dir / "host_ed25519", self.dir / "school_ed25519"
        _keygen(host_key, "campusdx-test-gateway")
        _keygen(client_key, "campusdx-school")
        shutil.copy(f"{client_key}.pub", self.dir / "authorized_keys")
        os.chmod(self.dir / "authorized_keys", 0o600)
        port = _free_port()
        host_pub = Path(f"{host_key}.pub").read_text().split()
        (self.dir / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
        user = _user()
        chroot = os.geteuid() == 0 and _chroot_ok(self.root)
        config = [
            "ListenAddress 127.0.0.1",
            f"Port {port}",
            f"HostKey {host_key}",
            f"PidFile {self.dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password",
            "StrictModes no",
            "UsePAM no",
            f"AllowUsers {user}",
            "Subsystem sftp internal-sftp",
            "ForceCommand internal-sftp" + ("" if chroot else f" -d {self.root}"),
            *([f"ChrootDirectory {self.root}"] if chroot else []),
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "LogLevel VERBOSE",
        ]
        (self.dir / "sshd_config").write_text("\n".join(config) + "\n")
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
        with open(self.dir / "sshd.log", "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [binary, "-D", "-e", "-f", str(self.dir / "sshd_config")], stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited at start; see {self.dir / 'sshd.log'}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port} within {timeout_s:g} s")
        self.endpoint = SftpEndpoint(
            host="127.0.0.1",
            port=port,
            user=user,
            key_file=str(client_key),
            known_hosts=str(self.dir / "known_hosts"),
            root=str(self.root),
            remote_root="/" if chroot else str(self.root),
        )
        return self.endpoint

    def drop_connections(self) -> int:
        """Cut every open session, as a network failure on the gateway's side would: kill the
        per-connection sshd processes, keep the listener. Returns how many were cut."""
        if not self.process:
            return 0
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = [int(p) for p in children.read_text().split()] if children.exists() else []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def __enter__(self) -> SftpEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def _chroot_ok(root: Path) -> bool:
    """sshd's ChrootDirectory must be owned by root and writable by nobody else, all the way up;
    the inbox and receipts below it stay writable."""
    for part in (root, *root.parents):
        st = part.stat()
        if st.st_uid != 0 or st.st_mode & 0o022:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.sshd", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start sshd; print the endpoint as JSON; run until killed")
    start.add_argument("--dir", required=True, type=Path, help="where keys, config and log go")
    start.add_argument("--root", required=True, type=Path, help="the gateway directory SFTP serves")
    sub.add_parser("check", help="exit 0 when sshd is installed")
    args = parser.parse_args(argv)
    if args.command == "check":
        try:
            print(sshd_binary())
        except SshdUnavailable as exc:
            print(exc, file=sys.stderr)
            return 1
        return 0
    server = LocalSshd(args.dir, args.root)
    endpoint = server.start()
    print(json.dumps(asdict(endpoint)), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (server.stop(), sys.exit(0)))
    try:
        server.process.wait()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
