"""The console's pages: log in and out, tasks (list, one task with its live DAG), OBProxy clusters
(list, detail, create form), hosts and OceanBase clusters (lists, add).

Pages read through the same calls the API routes make; every change is made by the pages'
scripts calling the API (create a cluster, register hosts, retry, rollback, skip, cancel) or,
where OCP's API has no call (registering an OceanBase cluster), by a form posting to the same
function the CLI calls. A page without a session redirects to the login page.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from engine import Engine, NotFound, OcpTaskError, User, render_dag
from engine.task_filters import statuses_named
from tasks.obproxy.clusters import cluster_row, get_cluster, list_clusters
from tasks.obproxy.packages import package_dir

from ..routes.ids import Id
from ..session import COOKIE, CsrfRefused, check_csrf, session_of
from ..throttle import FailedLogins, Throttled
from .task_view import dag_svg, task_state

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")  # autoescapes every .html
LOGIN_COOKIE = "ocptask_login"
PAGE_SIZES = (50, 100, 200, 500)

router = APIRouter(include_in_schema=False)
T = TypeVar("T")


class PageMissing(Exception):
    """A page of something that does not exist: an HTML 404 naming it."""


class LoginRequired(Exception):
    def __init__(self, after: str) -> None:
        self.after = after


def page_session(request: Request) -> tuple[User, str]:
    found = session_of(request)
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return found


Session = Annotated[tuple[User, str], Depends(page_session)]


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(LoginRequired)
    async def to_login(_: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.after, safe='')}", status_code=303)

    @app.exception_handler(PageMissing)
    async def missing(request: Request, exc: PageMissing) -> Response:
        found = session_of(request)
        user, csrf = found if found else (None, "")
        context = {"user": user, "csrf": csrf, "page": "missing", "message": str(exc)}
        return TEMPLATES.TemplateResponse(request, "missing.html", context, status_code=404)


def _found(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``, or the page's 404 when what it reads does not exist."""
    try:
        return call(*args)
    except NotFound as exc:
        raise PageMissing(str(exc)) from None


def _engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def _page(request: Request, name: str, session: tuple[User, str], **context: Any) -> Response:
    user, csrf = session
    return TEMPLATES.TemplateResponse(
        request, name, {"user": user, "csrf": csrf, "page": name.split(".")[0], **context}
    )


def _safe_next(value: str | None) -> str:
    """Only a path of this site: never another site after logging in."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/tasks"


# -- logging in and out ---------------------------------------------------------------------


@router.get("/", response_class=RedirectResponse)
def home(session: Session) -> Response:
    return RedirectResponse("/tasks", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None, error: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)  # the login form's own CSRF token (double submit)
    answer = TEMPLATES.TemplateResponse(
        request,
        "login.html",
        {"csrf": token, "next": _safe_next(next), "error": error, "user": None, "page": "login"},
    )
    answer.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login")
    return answer


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=64)],
    next: Annotated[str, Form(max_length=2048)] = "/tasks",
) -> Response:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf):
        raise CsrfRefused()
    engine = _engine(request)
    failures: FailedLogins = request.app.state.failed_logins
    client = request.client.host if request.client else "?"
    try:
        failures.check(client)
    except Throttled:
        return _login_again(next, "Too many failed logins from this address; try again later.")
    user = await run_in_threadpool(engine.users.authenticate, username, password)
    if user is None:
        failures.failed(client)
        return _login_again(next, "Wrong user name or password.")
    token, _ = await run_in_threadpool(engine.sessions.open, user)
    answer = RedirectResponse(_safe_next(next), status_code=303)
    secure = request.url.scheme == "https"
    answer.set_cookie(COOKIE, token, httponly=True, samesite="lax", secure=secure, path="/")
    answer.delete_cookie(LOGIN_COOKIE, path="/login")
    return answer


def _login_again(after: str, error: str) -> Response:
    return RedirectResponse(
        f"/login?next={quote(_safe_next(after), safe='')}&error={quote(error)}", status_code=303
    )


@router.post("/logout")
def logout(request: Request, session: Session, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, session[1], csrf)
    _engine(request).sessions.close(request.cookies.get(COOKIE, ""))
    answer = RedirectResponse("/login", status_code=303)
    answer.delete_cookie(COOKIE, path="/")
    return answer


# -- tasks ----------------------------------------------------------------------------------


@router.get("/tasks", response_class=HTMLResponse)
def tasks_page(
    request: Request,
    session: Session,
    status: Annotated[str | None, Query(max_length=32)] = None,
    size: Annotated[int, Query(ge=1, le=max(PAGE_SIZES))] = 100,
    rows: bool = False,
) -> Response:
    """Newest first; ``rows=1`` gives the table's rows alone (the page refreshes them)."""
    try:
        wanted = statuses_named([status] if status else [])
    except OcpTaskError:
        wanted, status = [], None
    found, total = _engine(request).page(statuses=wanted, limit=size)
    name = "_task_rows.html" if rows else "tasks.html"
    return _page(
        request, name, session, tasks=found, total=total, status=status or "", size=size,
        sizes=PAGE_SIZES,
    )  # fmt: skip


@router.get("/tasks/{taskId}", response_class=HTMLResponse)
def task_page(request: Request, session: Session, taskId: Id) -> Response:
    engine = _engine(request)
    task = _found(engine.get, taskId)
    state = task_state(engine, task)
    return _page(request, "task.html", session, task=task, state=state, svg=dag_svg(task))


@router.get("/tasks/{taskId}/state")
def task_state_json(request: Request, session: Session, taskId: Id) -> Response:
    """What the task page redraws from: the record, each node's state and allowed actions."""
    engine = _engine(request)
    return JSONResponse(task_state(engine, engine.get(taskId)))


@router.get("/tasks/{taskId}/dag.svg")
def task_dag(request: Request, session: Session, taskId: Id) -> Response:
    return Response(render_dag(_engine(request).get(taskId), "svg"), media_type="image/svg+xml")


# -- OBProxy clusters -----------------------------------------------------------------------


@router.get("/obproxy", response_class=HTMLResponse)
def clusters_page(request: Request, session: Session) -> Response:
    clusters, total = list_clusters(_engine(request), 0, 500)
    return _page(request, "clusters.html", session, clusters=clusters, total=total)


@router.get("/obproxy/new", response_class=HTMLResponse)
def cluster_form(request: Request, session: Session) -> Response:
    engine = _engine(request)
    packages = sorted(p.name for p in package_dir().glob("obproxy-*.rpm"))
    return _page(
        request, "cluster_new.html", session, hosts=engine.hosts.list(),
        ob_clusters=engine.ob_clusters.list(), packages=packages,
    )  # fmt: skip


@router.get("/obproxy/{id}", response_class=HTMLResponse)
def cluster_page(request: Request, session: Session, id: Id) -> Response:
    engine = _engine(request)
    cluster = _found(get_cluster, engine, id)
    row = cluster_row(engine, id)
    return _page(
        request, "cluster.html", session, cluster=cluster,
        startup_parameters=row.startup_parameters, parameters=row.parameters,
    )  # fmt: skip


# -- hosts and OceanBase clusters -----------------------------------------------------------


@router.get("/hosts", response_class=HTMLResponse)
def hosts_page(request: Request, session: Session) -> Response:
    engine = _engine(request)
    return _page(
        request, "hosts.html", session, hosts=engine.hosts.list(),
        credentials=engine.credentials.list(),
    )  # fmt: skip


@router.get("/obclusters", response_class=HTMLResponse)
def ob_clusters_page(request: Request, session: Session, error: str | None = None) -> Response:
    found = _engine(request).ob_clusters.list()
    return _page(request, "obclusters.html", session, ob_clusters=found, error=error)


@router.post("/obclusters")
def ob_cluster_add(
    request: Request,
    session: Session,
    cluster_id: Annotated[int, Form(alias="obClusterId", ge=1, le=2**31 - 1)],
    name: Annotated[str, Form(alias="clusterName", max_length=128)],
    rs_list: Annotated[str, Form(alias="rsList", max_length=4096)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form()] = "",  # missing: refused as a wrong one (403)
) -> Response:
    """Register an OceanBase cluster (OCP's API has no call for it; the CLI's ``obcluster
    add`` makes the same one)."""
    check_csrf(request, session[1], csrf)
    try:
        _engine(request).ob_clusters.add(cluster_id, name, rs_list=rs_list, password=password)
    except OcpTaskError as exc:
        return RedirectResponse(f"/obclusters?error={quote(str(exc))}", status_code=303)
    return RedirectResponse("/obclusters", status_code=303)
