"""The admin dashboard: server-rendered pages (Jinja2), no script, nothing from another site.

Pages: the overview (certificate and its remaining time, each group's count against its
threshold, requests per hour as an SVG bar chart drawn here), clients (search, state, last seen,
machine name, fingerprint changes), events (filters), DNS publishing, and a confirmation page
before blocking or unblocking a client. Templates and the style sheet ship in the package
(``templates/``, ``static/``).

Signing in: the admin types the token into ``/login``; the answer sets a session cookie derived
from the token (HttpOnly, SameSite=Strict), so rotating the token ends every session. After 10
wrong tokens from one address within a minute, sign-ins from it are refused with 429
``rate_limited`` and ``Retry-After`` (:mod:`volact.host.admin.attempts`). Every
state-changing form (sign in, sign out, block, unblock) is checked against cross-site requests
twice: the request's ``Origin`` (or ``Referer``) must be this listener's own, and the form must
carry the CSRF value derived from the token. Answers forbid framing and any script
(Content-Security-Policy).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from volact.core.errors import BadRequest, InternalError, RateLimited, Unauthorized, VolactError
from volact.host.admin import params, views
from volact.host.admin.attempts import FailedSignIns
from volact.host.admin.token import AdminToken, derive
from volact.host.service import HostService
from volact.web import client_address, log, status_for

COOKIE = "volact_admin"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
EVENT_KINDS = (
    "activation_request",
    "cloned_image",
    "client_blocked",
    "client_unblocked",
    "dns_published",
    "dns_publish_failed",
    "host_started",
    "certificate_loaded",
)
CHART_WIDTH = 720
CHART_HEIGHT = 180
PAGE_SIZE = 50
MAX_FORM_BYTES = 8192

Page = Callable[[Request], Awaitable[Response]]


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("volact.host.admin", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["remaining"] = remaining
    env.filters["when"] = when
    env.filters["detail"] = detail
    return env


def detail(value: Any) -> str:
    """An event detail's value as text (a list as ``a, b``)."""
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def remaining(seconds: int) -> str:
    """A time left as people read it: ``729 days 23 h``, ``5 h 12 min``, ``40 s``."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''} {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def when(text: str | None) -> str:
    """An ISO 8601 UTC time for a table cell (``2026-01-31 12:00:00``); ``–`` for none."""
    return text.replace("T", " ").removesuffix("Z") if text else "–"


def chart(hours: list[dict[str, Any]]) -> dict[str, Any]:
    """Bars of the requests-per-hour chart, in SVG user units (the template draws them)."""
    peak = max((h["activated"] + h["other"] for h in hours), default=0) or 1
    slot = CHART_WIDTH / max(len(hours), 1)
    bars = []
    for index, hour in enumerate(hours):
        total = hour["activated"] + hour["other"]
        height = CHART_HEIGHT * total / peak
        ok_height = CHART_HEIGHT * hour["activated"] / peak
        bars.append(
            {
                "x": round(index * slot + slot * 0.1, 1),
                "width": round(slot * 0.8, 1),
                "y": round(CHART_HEIGHT - height, 1),
                "height": round(height, 1),
                "ok_y": round(CHART_HEIGHT - ok_height, 1),
                "ok_height": round(ok_height, 1),
                "label": hour["start"][11:13],
                "title": f"{hour['start']}: {hour['activated']} activated, "
                f"{hour['other']} refused or below the threshold",
                "total": total,
            }
        )
    return {"bars": bars, "peak": peak, "width": CHART_WIDTH, "height": CHART_HEIGHT}


def done_notice(query: Mapping[str, str]) -> str:
    """The notice after a block or unblock (``/change`` redirects with ``done``, ``groups`` and
    the CMID as ``q``). It is made here from those, never taken as text from the link, so a
    link from elsewhere cannot put its own words in the dashboard."""
    action, groups = query.get("done"), query.get("groups", "")
    try:
        cmid = views.normalised_cmid(query.get("q", ""))
    except BadRequest:
        return ""
    if action not in ("block", "unblock") or not groups.isdigit():
        return ""
    return f"{action}ed {cmid} ({int(groups)} group{'s' if int(groups) != 1 else ''})"


def _same_origin(request: Request) -> bool:
    """The request came from a page of this listener (its Origin, else its Referer)."""
    host = request.headers.get("host", "")
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    parts = urlsplit(source)
    return bool(host) and parts.scheme in ("http", "https") and parts.netloc == host


async def read_form(request: Request) -> dict[str, str]:
    """A small URL-encoded form (the dashboard's forms are a few short fields)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BadRequest("the form must be application/x-www-form-urlencoded")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_FORM_BYTES:
            raise BadRequest(f"the form is larger than {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("the form is not valid") from exc
    return dict(pairs)


def routes(
    service: HostService, token: AdminToken, sign_ins: FailedSignIns | None = None
) -> list[BaseRoute]:
    """The dashboard's pages. ``sign_ins`` limits failed sign-ins per address (a fresh
    :class:`~volact.host.admin.attempts.FailedSignIns` by default), on the host's clock."""
    env = environment()
    sign_ins = sign_ins if sign_ins is not None else FailedSignIns()

    def render(
        request: Request,
        name: str,
        http_status: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        try:
            csrf = derive(token.current(), "csrf")
        except VolactError:
            csrf = ""
        html = env.get_template(name).render(
            request_path=request.url.path, csrf=csrf, host_id=service.settings.host_id, **context
        )
        return HTMLResponse(
            html, status_code=http_status, headers={**SECURITY_HEADERS, **(headers or {})}
        )

    def error_page(request: Request, error: VolactError) -> HTMLResponse:
        return render(
            request, "error.html", status_for(error), error=error, signed_in=signed_in(request)
        )

    def signed_in(request: Request) -> bool:
        try:
            token.check_derived(request.cookies.get(COOKIE), "session")
        except Unauthorized:
            return False
        return True

    async def checked_form(request: Request) -> dict[str, str]:
        """The form of a state-changing request, once it is known to come from our page."""
        if not _same_origin(request):
            raise Unauthorized("this form was not sent from this dashboard (Origin check)")
        values = await read_form(request)
        token.check_derived(values.get("csrf"), "csrf")
        return values

    def page(work: Page, *, sign_in: bool = True) -> Page:
        async def endpoint(request: Request) -> Response:
            if sign_in and not signed_in(request):
                return RedirectResponse("/login", status_code=303)
            try:
                return await work(request)
            except VolactError as error:
                return error_page(request, error)
            except Exception:
                log.exception("unexpected error in %s %s", request.method, request.url.path)
                return error_page(request, InternalError("an unexpected error; it was logged"))

        return endpoint

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return render(request, "login.html", signed_in=False)
        address = client_address(request)
        try:
            form = await checked_form_for_login(request)
            sign_ins.check(address, service.clock())
            try:
                token.check(form.get("token", "").strip())
            except Unauthorized:
                sign_ins.failed(address, service.clock())
                raise
        except Unauthorized as error:
            return render(request, "login.html", 401, error=error, signed_in=False)
        except RateLimited as error:
            wait = {"Retry-After": str(error.details["retry_after"])}
            return render(request, "login.html", 429, wait, error=error, signed_in=False)
        sign_ins.succeeded(address)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE, derive(token.current(), "session"), httponly=True, samesite="strict"
        )
        return response

    async def checked_form_for_login(request: Request) -> dict[str, str]:
        # Before signing in there is no CSRF value to check; the Origin check still applies.
        if not _same_origin(request):
            raise Unauthorized("this form was not sent from this dashboard (Origin check)")
        return await read_form(request)

    async def logout(request: Request) -> Response:
        await checked_form(request)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def overview(request: Request) -> Response:
        status = await views.status_json(service)
        hours = await views.requests_per_hour(service)
        return render(request, "overview.html", status=status, chart=chart(hours), title="Overview")

    async def clients(request: Request) -> Response:
        query = params.client_query(params.given(request.query_params), PAGE_SIZE)
        found = await views.clients_json(service, query)
        shown = {k: v for k, v in request.query_params.items() if k in ("q", "group", "blocked")}

        def link(offset: int) -> str:
            return "/clients?" + urlencode({**shown, "offset": offset})

        paging = {
            "first": query.offset + 1 if found["clients"] else 0,
            "last": query.offset + len(found["clients"]),
            "previous": link(max(0, query.offset - query.limit)) if query.offset else None,
            "next": link(query.offset + query.limit)
            if query.offset + query.limit < found["total"]
            else None,
        }
        return render(
            request,
            "clients.html",
            title="Clients",
            found=found,
            query=query,
            paging=paging,
            notice=done_notice(request.query_params),
        )

    async def events(request: Request) -> Response:
        query = params.event_query(params.given(request.query_params), iso=True)
        found = await views.events_json(service, query)
        return render(
            request,
            "events.html",
            title="Events",
            found=found,
            query=query,
            form=dict(request.query_params),
            kinds=EVENT_KINDS,
        )

    async def dns(request: Request) -> Response:
        return render(
            request, "dns.html", title="DNS publishing", results=await views.dns_json(service)
        )

    async def confirm(request: Request) -> Response:
        action = request.query_params.get("action", "block")
        if action not in ("block", "unblock"):
            raise BadRequest("the action must be block or unblock")
        cmid = views.normalised_cmid(request.query_params.get("cmid", ""))
        found = await views.clients_json(service, views.ClientQuery(text=cmid, limit=100))
        return render(
            request,
            "confirm.html",
            title="Confirm",
            action=action,
            cmid=cmid,
            known=found["clients"],
        )

    async def change(request: Request) -> Response:
        form = await checked_form(request)
        action = form.get("action", "")
        if action not in ("block", "unblock"):
            raise BadRequest("the action must be block or unblock")
        done = await views.set_blocked(service, form.get("cmid", ""), action == "block")
        answer = {"q": done["cmid"], "done": action, "groups": done["groups"]}
        return RedirectResponse("/clients?" + urlencode(answer), status_code=303)

    return [
        Route("/", page(overview), methods=["GET"]),
        Route("/login", page(login, sign_in=False), methods=["GET", "POST"]),
        Route("/logout", page(logout), methods=["POST"]),
        Route("/clients", page(clients), methods=["GET"]),
        Route("/events", page(events), methods=["GET"]),
        Route("/dns", page(dns), methods=["GET"]),
        Route("/confirm", page(confirm), methods=["GET"]),
        Route("/change", page(change), methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("volact.host.admin", "static")]), name="static"),
    ]
