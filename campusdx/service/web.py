"""The stewards' and auditors' web page, rendered on the server (Jinja2), under ``/ui/``.

Three views: pending access requests with approve and reject (stewards: their datasets), the
grants with their end dates, and the audit log with filters (auditors: all; stewards: their
datasets). A person signs in with their id and secret; the session is a bearer token in an
HttpOnly, SameSite=Strict cookie (``Secure`` when served over HTTPS), so a form on another
site cannot post on their behalf. The page uses the same checks as the API.
"""

import hashlib
import hmac
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from campusdx.service import access as api
from campusdx.service.store import Principal

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
ROLE_NAMES = {
    "admin": "平台管理员",
    "steward": "数据管理员（部门）",
    "dept_user": "部门用户",
    "auditor": "审计员",
    "application": "应用",
}


def _who(request: Request) -> Principal | None:
    token = request.cookies.get(api.COOKIE)
    return request.app.state.service.store.principal_of_token(token) if token else None


def csrf_token(request: Request) -> str:
    """The forms' token: derived from the session, which another site can neither read nor guess."""
    session = request.cookies.get(api.COOKIE, "")
    return hashlib.sha256(f"campusdx-form:{session}".encode()).hexdigest()


def _same_origin_form(request: Request, csrf: str) -> None:
    """A form post must come from this page: its token, and no foreign origin."""
    if not hmac.compare_digest(csrf, csrf_token(request)):
        raise api.Refused(403, "the form's token does not match the session: reload the page")
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise api.Refused(403, "a form from another site is not accepted")


def install(app: FastAPI, service: api.Service) -> None:
    def page(request: Request, name: str, principal: Principal, **context) -> HTMLResponse:
        api.audit_note(request, principal=principal)
        return TEMPLATES.TemplateResponse(
            request,
            name,
            {
                "me": principal,
                "role_name": ROLE_NAMES.get(principal.role, principal.role),
                "csrf": csrf_token(request),
                **context,
            },
        )

    def signed_in(request: Request, roles: tuple[str, ...]) -> Principal | RedirectResponse:
        principal = _who(request)
        if principal is None:
            return RedirectResponse("/ui/login", status_code=303)
        api.audit_note(request, principal=principal)
        service.limiter.check(principal.id, "requests")
        if principal.role not in roles:
            raise api.Refused(403, f"this page is for {' or '.join(ROLE_NAMES[r] for r in roles)}")
        return principal

    @app.get("/ui/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, failed: bool = False) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(request, "login.html", {"failed": failed, "me": None})

    @app.post("/ui/login", include_in_schema=False)
    def login(
        request: Request,
        principal_id: Annotated[str, Form(max_length=64)],
        secret: Annotated[str, Form(max_length=256)],
    ) -> RedirectResponse:
        where = request.client.host if request.client else "?"
        service.token_limiter.check(f"token:{where}", "sign-ins")
        principal = service.store.check_secret(principal_id, secret)
        if principal is None or principal.role == "application":
            return RedirectResponse("/ui/login?failed=true", status_code=303)
        api.audit_note(request, principal=principal)
        target = "/ui/audit" if principal.role == "auditor" else "/ui/requests"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            api.COOKIE,
            service.store.issue_token(principal),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=3600,
            path="/",
        )
        return response

    @app.post("/ui/logout", include_in_schema=False)
    def logout(request: Request) -> RedirectResponse:
        token = request.cookies.get(api.COOKIE)
        if token:
            service.store.end_token(token)  # the session ends here, not when the cookie expires
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(api.COOKIE, path="/")
        return response

    @app.get("/ui", include_in_schema=False)
    @app.get("/ui/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/ui/requests", status_code=303)

    @app.get("/ui/requests", response_class=HTMLResponse, include_in_schema=False)
    def requests_view(request: Request):
        me = signed_in(request, ("steward",))
        if isinstance(me, RedirectResponse):
            return me
        pending = service.store.grants(datasets=api.stewarded(service, me), status="pending")
        return page(
            request,
            "requests.html",
            me,
            pending=pending,
            datasets=service.datasets,
            applications={p.id: p for p in service.store.principals()},
        )

    @app.post("/ui/requests/{gid}", include_in_schema=False)
    def decide(
        request: Request,
        gid: Annotated[int, PathParam(ge=1, le=2**62)],
        decision: Annotated[str, Form(pattern="^(approve|reject)$")],
        csrf: Annotated[str, Form(max_length=128)],
        note: Annotated[str | None, Form(max_length=500)] = None,
    ):
        me = signed_in(request, ("steward",))
        if isinstance(me, RedirectResponse):
            return me
        _same_origin_form(request, csrf)
        api.audit_note(request, principal=me, grant=gid)
        decided = api.decide_grant(service, me, gid, decision == "approve", note or None)
        api.audit_note(request, dataset=decided.dataset)
        return RedirectResponse("/ui/requests", status_code=303)

    @app.get("/ui/grants", response_class=HTMLResponse, include_in_schema=False)
    def grants_view(request: Request):
        me = signed_in(request, ("steward", "auditor", "admin"))
        if isinstance(me, RedirectResponse):
            return me
        scope = api.stewarded(service, me) if me.role == "steward" else None
        grants = [g for g in service.store.grants(datasets=scope) if g.status == "approved"]
        today = api.today()
        return page(
            request,
            "grants.html",
            me,
            grants=grants,
            today=today,
            datasets=service.datasets,
            applications={p.id: p for p in service.store.principals()},
        )

    @app.get("/ui/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit_view(
        request: Request,
        who: Annotated[str | None, Query(max_length=64)] = None,
        dataset: Annotated[str | None, Query(max_length=64)] = None,
        status: Annotated[str | None, Query(max_length=3)] = None,
    ):
        me = signed_in(request, ("steward", "auditor"))
        if isinstance(me, RedirectResponse):
            return me
        scope = api.stewarded(service, me) if me.role == "steward" else None
        outcome = int(status) if status and status.isdigit() else None
        entries = service.store.audit_entries(
            principal=who or None, dataset=dataset or None, datasets=scope, outcome=outcome, limit=200
        )
        return page(
            request,
            "audit.html",
            me,
            entries=entries,
            who=who or "",
            dataset=dataset or "",
            status=status or "",
            datasets=service.datasets,
        )
