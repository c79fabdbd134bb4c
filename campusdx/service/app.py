"""The data-sharing service (共享数据服务): FastAPI over the published warehouse snapshot.

``create_app(paths)`` builds the application; ``campusdx serve`` runs it under uvicorn
(:mod:`campusdx.service.server`). What it serves and to whom:

- ``POST /oauth/token``: OAuth2 client credentials (an application's or a person's id and
  secret) for a bearer token.
- ``GET /v1/data/<dataset>`` and ``GET /v1/data/<dataset>/{key}``: the shared datasets of
  ``schemas/sharing/datasets.yml``, keyset-paginated, with the declared equality filters,
  ``as_of`` (datasets with history) and ``changed_since`` (pass back ``next_changed_since``).
  An application reads what its active grants allow; a department user or steward reads their
  own department's rows, personal fields masked.
- ``/v1/grants``: access review (访问审核): applications request, the dataset's steward
  department approves or rejects, either side revokes.
- ``/v1/applications``: the platform administrator registers applications and rotates or
  revokes their secrets.
- ``GET /v1/audit``: the audit log (日志监管), for auditors (all) and stewards (their datasets).
- ``/ui/``: the stewards' and auditors' web page (:mod:`campusdx.service.web`).

Every request, allowed or refused, is written to the hash-chained audit log before its response
is released (the ``audit`` middleware). Problems are ``application/problem+json`` (RFC 9457).
"""

import asyncio
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Form, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from campusdx.core import settings
from campusdx.core.settings import REPO_ROOT, Paths
from campusdx.service import catalog, web
from campusdx.service.access import (
    RateLimiter,
    Refused,
    Service,
    access_for,
    audit_note,
    decide_grant,
    grant_or_404,
    stewarded,
    today,
)
from campusdx.service.catalog import DatasetDecl
from campusdx.service.query import MAX_PAGE, Access, NoSnapshot, QueryError, QueryTimeout, Reader
from campusdx.service.store import Grant, Principal, Store, StoreError

log = logging.getLogger(__name__)

OrgId = Annotated[str, Field(pattern=r"^[0-9A-Za-z]{1,16}$")]


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    missing_grant: dict[str, Any] | None = None
    field: str | None = None


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI responses of these problem statuses (and of those every route may answer:
    401, 422, 429): RFC 9457 documents, ``application/problem+json``."""
    described = {
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    }
    return {code: {"model": Problem, **described} for code in sorted({401, 422, 429, *codes})}


# -- request and response models ---------------------------------------------------------------


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class DataPage(BaseModel):
    dataset: str
    snapshot: str = Field(description="The published warehouse snapshot that answered")
    records: list[dict[str, Any]]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last")
    next_changed_since: str | None = Field(
        description="Pass as `changed_since` on the next sync to get only what changed after this answer"
    )
    masked_fields: list[str] = Field(description="Personal fields served masked (no field grant)")


class Record(BaseModel):
    dataset: str
    snapshot: str
    record: dict[str, Any]
    masked_fields: list[str]


class FieldInfo(BaseModel):
    name: str
    title: str
    personal: bool
    code_set: str | None
    filter: bool


class DatasetInfo(BaseModel):
    name: str
    title: str
    key: str
    steward_org_id: str
    steward_name: str
    scoped_by_department: bool
    history: bool
    changed_since: bool
    fields: list[FieldInfo]


class GrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str
    fields: list[Annotated[str, Field(max_length=64)]] | None = Field(
        None, max_length=200, description="Fields asked for; default: every field that is not personal"
    )
    scope: list[OrgId] | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="单位号 whose rows (with their sub-units') are asked for; null: all",
    )
    purpose: Annotated[str, Field(min_length=4, max_length=500)]
    ends_on: date


class GrantOut(Grant):
    expired: bool = Field(description="Approved, but past its end date: it grants nothing any more")


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    note: Annotated[str, Field(max_length=500)] | None = None


class ApplicationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)]
    department: OrgId


class PrincipalOut(BaseModel):
    id: str
    name: str
    role: str
    department: str | None
    revoked_at: str | None = None


class Credentials(BaseModel):
    id: str
    secret: str = Field(description="Shown once: only a slow hash of it is stored")


class AuditEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    seq: int
    at: str
    hash: str


# -- the application ---------------------------------------------------------------------------


def _problem(status: int, detail: str, title: str | None = None, **extra: Any) -> JSONResponse:
    body = Problem(
        title=title or HTTPStatus(status).phrase, status=status, detail=detail, **extra
    ).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def create_app(paths: Paths | None = None, *, datasets: dict[str, DatasetDecl] | None = None) -> FastAPI:
    paths = paths or settings.paths()
    config = settings.current()
    service = Service(
        paths=paths,
        store=Store(paths),
        reader=Reader(paths, timeout_s=config.sharing_query_timeout_s),
        datasets=datasets or catalog.datasets(),
        limiter=RateLimiter(config.sharing_rate, config.sharing_burst),
        token_limiter=RateLimiter(2.0, 10),
    )
    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        title="campusdx 共享数据服务 (data-sharing service)",
        version="1.0",
        description=(
            "The university's shared base data, read from the current published warehouse snapshot, "
            "under access review (访问审核), roles (多级管理) and a hash-chained audit log (日志监管). "
            "Authenticate with `POST /oauth/token` (client credentials), then send "
            "`Authorization: Bearer <token>`."
        ),
    )
    app.state.service = service
    _install_docs(app)

    @app.on_event("shutdown")
    def _stop() -> None:
        service.store.close()
        service.reader.close()

    _install_handlers(app)
    _install_audit(app, service)
    _install_auth_routes(app, service)
    _install_data_routes(app, service)
    _install_grant_routes(app, service)
    _install_admin_routes(app, service)
    web.install(app, service)
    return app


SWAGGER_UI = REPO_ROOT / "expectations" / "datadocs" / "node_modules" / "swagger-ui-dist"
"""Swagger UI, installed by ``make`` from the npm registry (pinned in expectations/datadocs)."""


def _install_docs(app: FastAPI) -> None:
    """``/docs``: the OpenAPI document's page, its scripts served from here when installed, so
    it renders on the school's network with no Internet (otherwise from Swagger UI's CDN)."""
    assets = {}
    if (SWAGGER_UI / "swagger-ui-bundle.js").is_file():
        app.mount("/docs-assets", StaticFiles(directory=SWAGGER_UI), name="docs-assets")
        assets = {
            "swagger_js_url": "/docs-assets/swagger-ui-bundle.js",
            "swagger_css_url": "/docs-assets/swagger-ui.css",
            "swagger_favicon_url": "/docs-assets/favicon-32x32.png",
        }

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} — API", **assets)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        extra = getattr(exc, "extra", {})
        audit_note(request, reason=str(exc.detail))
        response = _problem(exc.status_code, str(exc.detail), **extra)
        for k, v in (exc.headers or {}).items():
            response.headers[k] = v
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        first = None
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path"))
            first = first or where
            problems.append(f"{where or 'request'}: {err.get('msg')}")
        # the values sent are not echoed: they may be personal data
        audit_note(request, reason="; ".join(problems))
        return _problem(422, "; ".join(problems), field=first)


def _install_audit(app: FastAPI, service: Service) -> None:
    @app.middleware("http")
    async def audit(request: Request, call_next: Callable):
        started = time.perf_counter()
        request.state.audit = {}
        try:
            response = await call_next(request)
            status = response.status_code
        except Exception:
            log.exception("request failed: %s %s", request.method, scrub(request.url.path))
            response = _problem(500, "the service failed on this request; it is in the service's log")
            status = 500
        note = request.state.audit
        principal: Principal | None = note.pop("principal", None)
        entry = {
            "principal": principal.id if principal else None,
            "role": principal.role if principal else None,
            "method": request.method,
            "path": scrub(request.url.path),
            "status": status,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "client": request.client.host if request.client else None,
            **note,
        }
        for key in ("reason", "client_id"):  # they may quote what the caller sent
            if entry.get(key) is not None:
                entry[key] = scrub(entry[key])
        try:
            seq = await asyncio.wrap_future(service.store.audit_writer().submit(entry))
        except Exception:
            log.exception("the audit log could not be written; the response is withheld")
            return _problem(503, "the audit log cannot be written, so nothing is served")
        response.headers["X-Audit-Seq"] = str(seq)
        return response


# -- who calls ---------------------------------------------------------------------------------


def _bearer(request: Request) -> str | None:
    """The API takes its token from the Authorization header only: a session cookie of the web
    page is never credentials here, so no form on another site can call the API as a person."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def caller(roles: tuple[str, ...] | None = None) -> Callable:
    """A dependency: the authenticated principal, rate-limited, of one of ``roles``."""

    def dependency(request: Request) -> Principal:
        service: Service = request.app.state.service
        token = _bearer(request)
        principal = service.store.principal_of_token(token) if token else None
        if principal is None:
            where = request.client.host if request.client else "?"
            # guessing tokens is slowed down like guessing secrets
            service.token_limiter.check(f"anonymous:{where}", "unauthenticated requests")
            raise Refused(
                401,
                "a valid bearer token is required (POST /oauth/token with client credentials)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        audit_note(request, principal=principal)
        service.limiter.check(principal.id, f"requests (at most {service.limiter.rate:g} per second)")
        if roles is not None and principal.role not in roles:
            raise Refused(403, f"this needs the role {' or '.join(roles)}; the caller is {principal.role}")
        return principal

    return dependency


def _install_auth_routes(app: FastAPI, service: Service) -> None:
    basic = HTTPBasic(auto_error=False)

    @app.post(
        "/oauth/token",
        response_model=Token,
        tags=["auth"],
        responses=problems(),
        summary="Client credentials for a bearer token",
    )
    def token(
        request: Request,
        grant_type: Annotated[Literal["client_credentials"], Form()],
        client_id: Annotated[str | None, Form(max_length=64)] = None,
        client_secret: Annotated[str | None, Form(max_length=256)] = None,
        credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)] = None,
    ) -> Token:
        where = request.client.host if request.client else "?"
        service.token_limiter.check(f"token:{where}", "token requests")
        if credentials is not None:
            client_id, client_secret = credentials.username, credentials.password
        if not client_id or not client_secret:
            raise Refused(
                401, "client_id and client_secret are required", headers={"WWW-Authenticate": "Basic"}
            )
        principal = service.store.check_secret(client_id, client_secret)
        audit_note(request, client_id=client_id[:64])
        if principal is None:
            raise Refused(401, "unknown client or wrong secret", headers={"WWW-Authenticate": "Basic"})
        audit_note(request, principal=principal)
        return Token(access_token=service.store.issue_token(principal), expires_in=3600)


# -- data --------------------------------------------------------------------------------------


def _check_fields(ds: DatasetDecl, access: Access, fields: str | None) -> list[str] | None:
    if fields is None:
        return None
    names = [f.strip() for f in fields.split(",") if f.strip()]
    unknown = [f for f in names if f not in ds.field_names]
    if unknown:
        raise Refused(422, f"fields: dataset {ds.name} has no field {unknown[0]!r}", field="fields")
    missing = [f for f in names if f not in access.fields and f not in access.masked]
    if missing:
        raise Refused(
            403,
            f"fields {', '.join(missing)} of dataset {ds.name} are not in the caller's grants",
            missing_grant={"dataset": ds.name, "fields": missing},
        )
    return names


def _changes_token(value: str | None) -> str | None:
    """``changed_since``: a ``next_changed_since`` given out, or an ISO time (UTC when unzoned)."""
    if value is None:
        return None
    if re.fullmatch(r"\d{8}T\d{12}Z", value):
        return value
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise Refused(
            422,
            "changed_since: give a next_changed_since this service returned, or an ISO 8601 time",
            field="changed_since",
        ) from None
    when = when.replace(tzinfo=when.tzinfo or UTC).astimezone(UTC)
    return when.strftime("%Y%m%dT%H%M%S%fZ")


_PERSONAL_LOOKING = re.compile(r"\d{17}[\dXx]|1\d{10}|\d{15}")


def scrub(value: Any) -> Any:
    """A filter value for the audit log: one that looks like a 身份证号 or a mobile number (sent in
    any field) is masked as the analyst schema masks them."""
    text = str(value)
    if _PERSONAL_LOOKING.search(text):
        return _PERSONAL_LOOKING.sub(lambda m: m.group()[:6] + "*" * (len(m.group()) - 6), text)
    return value


def _install_data_routes(app: FastAPI, service: Service) -> None:
    @app.get("/v1/datasets", response_model=list[DatasetInfo], tags=["data"], summary="The shared datasets")
    def list_datasets(principal: Annotated[Principal, Depends(caller())]) -> list[DatasetInfo]:
        return [
            DatasetInfo(
                name=ds.name,
                title=ds.title,
                key=ds.key,
                steward_org_id=ds.steward.org_id,
                steward_name=ds.steward.name,
                scoped_by_department=ds.scope is not None,
                history=ds.history is not None,
                changed_since=ds.changes is not None,
                fields=[
                    FieldInfo(
                        name=f.name,
                        title=f.title,
                        personal=bool(f.personal),
                        code_set=f.code_set,
                        filter=f.filter,
                    )
                    for f in ds.fields
                ],
            )
            for ds in service.datasets.values()
        ]

    for ds in service.datasets.values():
        _dataset_routes(app, service, ds)


def _answered(fn: Callable[[], Any]) -> Any:
    """``fn()``, a query's problems turned into problem responses."""
    try:
        return fn()
    except QueryError as exc:
        raise Refused(422, f"{exc.parameter}: {exc}", field=exc.parameter) from None
    except QueryTimeout as exc:
        raise Refused(503, str(exc), headers={"Retry-After": "5"}) from None
    except NoSnapshot as exc:
        raise Refused(503, str(exc), headers={"Retry-After": "60"}) from None


def _dataset_routes(app: FastAPI, service: Service, ds: DatasetDecl) -> None:
    filter_fields = {
        f.name: (str | None, Field(None, max_length=64, description=f"{f.title}: equal to"))
        for f in ds.fields
        if f.filter
    }
    common: dict[str, Any] = {
        "limit": (int, Field(100, ge=1, le=MAX_PAGE, description=f"Records per page (at most {MAX_PAGE})")),
        "cursor": (str | None, Field(None, max_length=400, description="`next_cursor` of the previous page")),
        "fields": (
            str | None,
            Field(None, max_length=2000, description="Comma-separated fields (default: all granted)"),
        ),
    }
    if ds.history is not None:
        common["as_of"] = (
            date | None,
            Field(None, description="The records as they stood at the end of this day"),
        )
    if ds.changes is not None:
        common["changed_since"] = (
            str | None,
            Field(None, max_length=40, description="Only records changed after this (`next_changed_since`)"),
        )
    params = create_model(
        f"{ds.name.title().replace('_', '')}Query",
        __config__=ConfigDict(extra="forbid"),
        **common,
        **filter_fields,
    )

    def list_records(
        request: Request,
        q: Annotated[params, Query()],  # type: ignore[valid-type]
        principal: Annotated[Principal, Depends(caller())],
    ) -> DataPage:
        audit_note(request, dataset=ds.name)  # a refusal is audited with its dataset too
        access = access_for(service, principal, ds)
        fields = _check_fields(ds, access, q.fields)
        filters = {k: getattr(q, k) for k in filter_fields if getattr(q, k) is not None}
        ungranted = sorted(set(filters) - access.fields)
        if ungranted:  # a filter on a field one may not read would let one read it, value by value
            raise Refused(
                403,
                f"filters on {', '.join(ungranted)}: fields of dataset {ds.name} not in the caller's grants",
                missing_grant={"dataset": ds.name, "fields": ungranted},
            )
        since = _changes_token(getattr(q, "changed_since", None))
        audit_note(
            request,
            dataset=ds.name,
            fields=fields or sorted(access.fields | access.masked),
            filters={
                **{k: scrub(v) for k, v in filters.items()},
                **({"changed_since": since} if since else {}),
            },
            as_of=str(getattr(q, "as_of", None) or "") or None,
        )
        page = _answered(
            lambda: service.reader.page(
                ds,
                access,
                fields=fields,
                filters=filters,
                limit=q.limit,
                cursor=q.cursor,
                as_of=getattr(q, "as_of", None),
                changed_since=since,
            ),
        )
        audit_note(request, rows=len(page.records), snapshot=page.snapshot)
        return DataPage(
            dataset=ds.name,
            snapshot=page.snapshot,
            records=page.records,
            next_cursor=page.next_cursor,
            next_changed_since=page.next_changed_since,
            masked_fields=page.masked,
        )

    def one_record(
        request: Request,
        key: Annotated[str, Path(max_length=64, description=f"{ds.field(ds.key).title}")],
        principal: Annotated[Principal, Depends(caller())],
        as_of: Annotated[date | None, Query(description="As it stood at the end of this day")] = None,
    ) -> Record:
        audit_note(request, dataset=ds.name)  # a refusal is audited with its dataset too
        access = access_for(service, principal, ds)
        audit_note(
            request,
            dataset=ds.name,
            fields=sorted(access.fields | access.masked),
            filters={"key": scrub(key)},
        )
        page = _answered(lambda: service.reader.page(ds, access, key=key, limit=1, as_of=as_of))
        audit_note(request, rows=len(page.records), snapshot=page.snapshot)
        if not page.records:
            raise Refused(404, f"dataset {ds.name} has no record with this {ds.key} that the caller may read")
        return Record(
            dataset=ds.name, snapshot=page.snapshot, record=page.records[0], masked_fields=page.masked
        )

    app.get(
        f"/v1/data/{ds.name}",
        response_model=DataPage,
        tags=["data"],
        summary=f"{ds.title} ({ds.name})",
        responses=problems(403, 503),
        operation_id=f"list_{ds.name}",
    )(list_records)
    app.get(
        f"/v1/data/{ds.name}/{{key}}",
        response_model=Record,
        tags=["data"],
        summary=f"One record of {ds.title} ({ds.name}) by {ds.key}",
        responses=problems(403, 404, 503),
        operation_id=f"get_{ds.name}",
    )(one_record)


# -- access review -----------------------------------------------------------------------------


def _install_grant_routes(app: FastAPI, service: Service) -> None:

    @app.post(
        "/v1/grants",
        response_model=GrantOut,
        status_code=201,
        tags=["access review"],
        responses=problems(403, 409),
    )
    def request_grant(
        request: Request,
        body: GrantRequest,
        principal: Annotated[Principal, Depends(caller(("application",)))],
    ) -> dict:
        ds = service.datasets.get(body.dataset)
        if ds is None:
            raise Refused(422, f"dataset: no shared dataset {body.dataset!r}", field="dataset")
        fields = body.fields if body.fields is not None else ds.open_fields
        unknown = [f for f in fields if f not in ds.field_names]
        if unknown or not fields:
            raise Refused(
                422, f"fields: dataset {ds.name} has no field {(unknown or [''])[0]!r}", field="fields"
            )
        if body.scope is not None and ds.scope is None:
            raise Refused(422, f"scope: dataset {ds.name} is not divided by department", field="scope")
        open_ones = [
            g for g in service.store.grants(app_id=principal.id, datasets=[ds.name]) if g.status == "pending"
        ] + service.store.active_grants(principal.id, ds.name, today())
        if open_ones:
            raise Refused(
                409,
                f"grant {open_ones[0].id} on {ds.name} is {open_ones[0].status}: one grant per dataset; "
                f"revoke it (POST /v1/grants/{open_ones[0].id}/revoke) and ask again for all that is needed",
            )
        day = today()
        if not day < body.ends_on <= day + timedelta(days=366):
            raise Refused(422, "ends_on: a grant ends after today and within a year", field="ends_on")
        audit_note(request, dataset=ds.name, fields=sorted(set(fields)))
        grant = service.store.request_grant(
            principal.id, ds.name, sorted(set(fields)), body.scope, body.purpose, body.ends_on
        )
        audit_note(request, grant=grant.id)
        return grant.as_json(day)

    @app.get("/v1/grants", response_model=list[GrantOut], tags=["access review"], responses=problems(403))
    def list_grants(
        principal: Annotated[Principal, Depends(caller())],
        status: Annotated[Literal["pending", "approved", "rejected", "revoked"] | None, Query()] = None,
    ) -> list[dict]:
        day = today()
        if principal.role == "application":
            grants = service.store.grants(app_id=principal.id, status=status)
        elif principal.role == "steward":
            grants = service.store.grants(datasets=stewarded(service, principal), status=status)
        elif principal.role in ("admin", "auditor"):
            grants = service.store.grants(status=status)
        else:
            raise Refused(403, f"the role {principal.role} sees no grants")
        return [g.as_json(day) for g in grants]

    @app.post(
        "/v1/grants/{gid}/decision",
        response_model=GrantOut,
        tags=["access review"],
        responses=problems(403, 404, 409),
    )
    def decision(
        request: Request,
        gid: Annotated[int, Path(ge=1, le=2**62)],
        body: Decision,
        principal: Annotated[Principal, Depends(caller(("steward",)))],
    ) -> dict:
        audit_note(request, grant=gid)
        decided = decide_grant(service, principal, gid, body.approve, body.note)
        audit_note(request, dataset=decided.dataset)
        return decided.as_json(today())

    @app.post(
        "/v1/grants/{gid}/revoke",
        response_model=GrantOut,
        tags=["access review"],
        responses=problems(403, 404, 409),
    )
    def revoke(
        request: Request,
        gid: Annotated[int, Path(ge=1, le=2**62)],
        principal: Annotated[Principal, Depends(caller(("steward", "application")))],
    ) -> dict:
        audit_note(request, grant=gid)
        grant = grant_or_404(service, principal, gid)
        audit_note(request, dataset=grant.dataset)
        if grant.app_id != principal.id and grant.dataset not in stewarded(service, principal):
            raise Refused(403, f"grant {gid} is revoked by its application or its dataset's steward")
        try:
            return service.store.revoke_grant(gid, principal.id).as_json(today())
        except StoreError as exc:
            raise Refused(409, str(exc)) from None


# -- administration and audit ------------------------------------------------------------------


def _install_admin_routes(app: FastAPI, service: Service) -> None:
    admin = Depends(caller(("admin",)))

    @app.get(
        "/v1/applications",
        response_model=list[PrincipalOut],
        tags=["administration"],
        responses=problems(403, 404, 409),
    )
    def applications(principal: Annotated[Principal, admin]) -> list[dict]:
        return [vars(p) for p in service.store.principals() if p.role == "application"]

    @app.post(
        "/v1/applications",
        response_model=Credentials,
        status_code=201,
        tags=["administration"],
        responses=problems(403, 404, 409),
    )
    def register(
        request: Request, body: ApplicationIn, principal: Annotated[Principal, admin]
    ) -> Credentials:
        app_, secret = service.store.add_principal(body.name, "application", body.department)
        audit_note(request, application=app_.id)
        return Credentials(id=app_.id, secret=secret)

    def _on_application(request: Request, aid: str, action: Callable[[str], Any]) -> Any:
        """``action`` on the application ``aid`` (404 when there is none; 409 when refused)."""
        found = service.store.principal(aid)
        if found is None or found.role != "application":
            raise Refused(404, f"no application {aid}")
        audit_note(request, application=aid)
        try:
            return action(aid)
        except StoreError as exc:
            raise Refused(409, str(exc)) from None

    @app.post(
        "/v1/applications/{aid}/rotate",
        response_model=Credentials,
        tags=["administration"],
        responses=problems(403, 404, 409),
    )
    def rotate(
        request: Request,
        aid: Annotated[str, Path(max_length=64)],
        principal: Annotated[Principal, admin],
    ) -> Credentials:
        return Credentials(id=aid, secret=_on_application(request, aid, service.store.rotate_secret))

    @app.post(
        "/v1/applications/{aid}/revoke",
        response_model=PrincipalOut,
        tags=["administration"],
        responses=problems(403, 404, 409),
    )
    def revoke_app(
        request: Request,
        aid: Annotated[str, Path(max_length=64)],
        principal: Annotated[Principal, admin],
    ) -> dict:
        _on_application(request, aid, service.store.revoke_principal)
        return vars(service.store.principal(aid))

    @app.get("/v1/audit", response_model=list[AuditEntry], tags=["audit"], responses=problems(403))
    def audit_log(
        principal: Annotated[Principal, Depends(caller(("auditor", "steward")))],
        who: Annotated[str | None, Query(max_length=64, description="Principal id")] = None,
        dataset: Annotated[str | None, Query(max_length=64)] = None,
        status: Annotated[int | None, Query(ge=100, le=599)] = None,
        since: Annotated[str | None, Query(max_length=40, description="ISO time (UTC)")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict]:
        scope = stewarded(service, principal) if principal.role == "steward" else None
        return service.store.audit_entries(
            principal=who, dataset=dataset, datasets=scope, outcome=status, since=since, limit=limit
        )
