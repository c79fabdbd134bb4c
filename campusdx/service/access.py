"""Who may do what in the sharing service: the service's parts, the refusal it answers with,
rate limits, what a caller may read of a dataset (grants, department scope, masks), and who
decides a grant (the dataset's steward department: 一数一源). The API and the web page both
stand on this module.
"""

import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fastapi import HTTPException, Request

from campusdx.core.clock import BEIJING
from campusdx.core.settings import Paths
from campusdx.service.catalog import DatasetDecl
from campusdx.service.query import Access, Reader
from campusdx.service.store import Grant, Principal, Store, StoreError

COOKIE = "campusdx_session"


class Refused(HTTPException):
    """A problem response with our fields (which grant is missing, which parameter is wrong)."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.extra = extra


def today() -> date:
    """Grants end on Beijing dates."""
    return datetime.now(BEIJING).date()


# -- rate limits -------------------------------------------------------------------------------


class RateLimiter:
    """A token bucket per key (principal or client address): ``rate`` per second, ``burst`` at once."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str, what: str) -> None:
        """Count a request of ``key``; 429 with ``Retry-After`` naming ``what`` when over the rate."""
        wait = self.wait_s(key)
        if wait:
            raise Refused(429, f"too many {what}", headers={"Retry-After": str(max(1, round(wait + 0.5)))})

    def wait_s(self, key: str) -> float:
        """0 when a request may go now (and counts it); otherwise seconds until one may."""
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


@dataclass
class Service:
    paths: Paths
    store: Store
    reader: Reader
    datasets: dict[str, DatasetDecl]
    limiter: RateLimiter
    token_limiter: RateLimiter


def audit_note(request: Request, **values: Any) -> None:
    note = getattr(request.state, "audit", None)
    if note is None:
        note = request.state.audit = {}
    note.update(values)


def access_for(service: Service, principal: Principal, ds: DatasetDecl) -> Access:
    """What ``principal`` may read of ``ds`` now; 403 naming the missing grant otherwise."""
    personal = set(ds.personal_fields)
    if principal.role == "application":
        grants = service.store.active_grants(principal.id, ds.name, today())
        if not grants:
            raise Refused(
                403,
                f"application {principal.id} holds no active grant on dataset {ds.name}; request one "
                f"(POST /v1/grants), to be approved by {ds.steward.name} ({ds.steward.org_id})",
                missing_grant={"dataset": ds.name},
            )
        # one active grant per application and dataset (a request is refused while one is active or
        # pending); should there be more, only what every one of them allows is served, so two
        # grants never combine into fields over rows that no steward approved together
        fields = frozenset.intersection(*(frozenset(g.fields) for g in grants))
        scopes = [g.scope for g in grants]
        scope = None if all(s is None for s in scopes) else frozenset().union(*(s or () for s in scopes))
        return Access(fields, scope, frozenset(personal - fields))
    if principal.role in ("dept_user", "steward"):
        if ds.scope is None and personal:
            raise Refused(
                403,
                f"dataset {ds.name} is not divided by department; a department account reads it only "
                "through an application's grant",
                missing_grant={"dataset": ds.name},
            )
        scope = frozenset({principal.department}) if ds.scope is not None else None
        return Access(frozenset(ds.open_fields), scope, frozenset(personal))
    raise Refused(403, f"the role {principal.role} reads no data (it manages or audits)")


def stewarded(service: Service, principal: Principal) -> list[str]:
    """The datasets whose grants ``principal`` approves (its department is their steward)."""
    if principal.role != "steward":
        return []
    return [n for n, ds in service.datasets.items() if ds.steward.org_id == principal.department]


def decide_grant(service: Service, principal: Principal, gid: int, approve: bool, note: str | None) -> Grant:
    grant = grant_or_404(service, principal, gid)
    if grant.dataset not in stewarded(service, principal):
        ds = service.datasets.get(grant.dataset)
        raise Refused(
            403,
            f"grant {gid} on dataset {grant.dataset} is decided by the steward of "
            f"{ds.steward.name if ds else 'its dataset'}, not by {principal.id}",
        )
    if grant.app_id == principal.id:
        raise Refused(403, "a requester never approves its own request")
    if approve:
        others = [g.id for g in service.store.active_grants(grant.app_id, grant.dataset, today())]
        if others:
            raise Refused(
                409, f"application {grant.app_id} already holds grant {others[0]} on {grant.dataset}"
            )
    try:
        return service.store.decide(gid, principal.id, approve, note)
    except StoreError as exc:
        raise Refused(409, str(exc)) from None


def grant_or_404(service: Service, principal: Principal, gid: int) -> Grant:
    """The grant, if ``principal`` may see it (its application, its dataset's steward, the
    administrator and the auditor); 404 otherwise, whether it exists or not."""
    try:
        grant = service.store.grant(gid)
    except StoreError:
        grant = None
    if grant is None or not (
        grant.app_id == principal.id
        or grant.dataset in stewarded(service, principal)
        or principal.role in ("admin", "auditor")
    ):
        raise Refused(404, f"no grant {gid} that the caller may see")
    return grant
