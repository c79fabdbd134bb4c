"""``campusdx serve``: the sharing service under uvicorn, over TLS unless on the loopback address.

数据加密传输: given ``--certfile`` and ``--keyfile`` the service speaks HTTPS itself. Without them
it listens only on 127.0.0.1 (or ::1), where the school's reverse proxy (nginx, the campus API
gateway) terminates TLS on the same machine and forwards to it; ``--proxy`` then trusts that
proxy's ``X-Forwarded-For`` and ``X-Forwarded-Proto`` so the audit log records the real client.
"""

from __future__ import annotations

import ipaddress

import uvicorn

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class ServeRefused(ValueError):
    pass


def check_listen(host: str, certfile: str | None, keyfile: str | None) -> None:
    """Refuse plain HTTP anywhere but the loopback address, and half a TLS configuration."""
    if bool(certfile) != bool(keyfile):
        raise ServeRefused("give both --certfile and --keyfile, or neither")
    if certfile:
        return
    try:
        loopback = host in LOOPBACK or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ServeRefused(
            f"refusing to serve plain HTTP on {host}: give --certfile and --keyfile (HTTPS), or listen "
            "on 127.0.0.1 behind the school's reverse proxy (--proxy)"
        )


def serve(
    host: str = "127.0.0.1",
    port: int = 8600,
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
    proxy: bool = False,
    workers: int = 1,
) -> None:
    check_listen(host, certfile, keyfile)
    uvicorn.run(
        "campusdx.service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        proxy_headers=proxy,
        forwarded_allow_ips="127.0.0.1" if proxy else None,
        server_header=False,
        access_log=False,
        log_level="info",
    )
