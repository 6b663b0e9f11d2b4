"""The console's pages: tasks (list, one task with its live DAG), OBProxy clusters (list, detail,
create form), hosts and OceanBase clusters (lists, add); ``install`` puts them, the login pages
and the static files on the app.

Pages read through the same calls the API routes make; every change is made by the pages'
scripts calling the API (create a cluster, register hosts, retry, rollback, skip, cancel) or,
where OCP's API has no call (registering an OceanBase cluster), by a form posting to the same
function the CLI calls.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from engine import OcpTaskError, PictureError, render_dag
from engine.audit import acting_as
from engine.reads.task_lists import statuses_named
from tasks.obclusters.registry import ObClusters
from tasks.obproxy.clusters import cluster_row, get_cluster, list_clusters
from tasks.obproxy.config_url import served_clusters
from tasks.obproxy.packages import packages
from tasks.obproxy.secret_parameters import masked

from ..auth.console_sessions import check_csrf
from ..auth.permissions import TASK_MANAGER
from ..routes.ids import Id
from . import audit_page, login
from .render import (
    HERE,
    POLL_HEADER,
    LoggedIn,
    LoginRequired,
    PageMissing,
    engine_of,
    error_page,
    found,
    page,
    page_permitted,
)
from .task_view import dag_svg, task_state

PAGE_SIZES = (50, 100, 200, 500)

router = APIRouter(include_in_schema=False, dependencies=[Depends(page_permitted)])


def install(app: FastAPI) -> None:
    app.include_router(login.router)
    app.include_router(router)
    app.include_router(audit_page.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        if request.headers.get(POLL_HEADER):  # a page's script: it says the session ended
            return Response(status_code=401)
        return RedirectResponse(f"/login?next={quote(exc.after, safe='')}", status_code=303)

    @app.exception_handler(PageMissing)
    def missing(request: Request, exc: PageMissing) -> Response:
        return error_page(request, 404, str(exc))


@router.get("/", response_class=RedirectResponse)
def home(session: LoggedIn) -> Response:
    return RedirectResponse("/tasks", status_code=303)


# -- tasks ----------------------------------------------------------------------------------


@router.get("/tasks", response_class=HTMLResponse)
def tasks_page(
    request: Request,
    session: LoggedIn,
    status: Annotated[str | None, Query(max_length=32)] = None,
    size: Annotated[int, Query(ge=1, le=max(PAGE_SIZES))] = 100,
    rows: bool = False,
) -> Response:
    """Newest first; ``rows=1`` gives the table's rows alone (the page refreshes them)."""
    try:
        wanted = statuses_named([status] if status else [])
    except OcpTaskError:
        wanted, status = [], None
    found, total = engine_of(request).page(statuses=wanted, limit=size)
    name = "_task_rows.html" if rows else "tasks.html"
    return page(
        request, name, session, tasks=found, total=total, status=status or "", size=size,
        sizes=PAGE_SIZES,
    )  # fmt: skip


@router.get("/tasks/{taskId}", response_class=HTMLResponse)
def task_page(request: Request, session: LoggedIn, taskId: Id) -> Response:
    engine = engine_of(request)
    task = found(engine.get, taskId)
    state = task_state(engine, task, manages=TASK_MANAGER in request.state.permissions)
    try:
        svg, why = dag_svg(task), None
    except PictureError as exc:  # no Graphviz here: the page works without its picture
        svg, why = None, str(exc)
    return page(request, "task.html", session, task=task, state=state, svg=svg, no_svg=why)


@router.get("/tasks/{taskId}/state")
def task_state_json(request: Request, session: LoggedIn, taskId: Id) -> Response:
    """What the task page redraws from: the record, each node's state and allowed actions."""
    engine = engine_of(request)
    manages = TASK_MANAGER in request.state.permissions
    return JSONResponse(task_state(engine, engine.get(taskId), manages=manages))


@router.get("/tasks/{taskId}/dag.svg")
def task_dag(request: Request, session: LoggedIn, taskId: Id) -> Response:
    return Response(render_dag(engine_of(request).get(taskId), "svg"), media_type="image/svg+xml")


# -- OBProxy clusters -----------------------------------------------------------------------


@router.get("/obproxy", response_class=HTMLResponse)
def clusters_page(request: Request, session: LoggedIn) -> Response:
    clusters, total = list_clusters(engine_of(request), 0, 500)
    return page(request, "clusters.html", session, clusters=clusters, total=total)


@router.get("/obproxy/new", response_class=HTMLResponse)
def cluster_form(request: Request, session: LoggedIn) -> Response:
    engine = engine_of(request)
    return page(
        request, "cluster_new.html", session, hosts=engine.hosts.list(),
        ob_clusters=ObClusters(engine).list(), packages=packages(),
    )  # fmt: skip


@router.get("/obproxy/{id}", response_class=HTMLResponse)
def cluster_page(request: Request, session: LoggedIn, id: Id) -> Response:
    engine = engine_of(request)
    cluster = found(get_cluster, engine, id)
    row = cluster_row(engine, id)
    if row.work_mode == "CONFIG_URL":  # what the config server hands its OBProxies now
        served = [(c.name, c.id, c.proxy_rs_list) for c in served_clusters(engine, row.name) or ()]
    else:  # what they were started with
        served = [(k["clusterName"], k["obClusterId"], k.get("rsList")) for k in row.ob_links[:1]]
    return page(
        request, "cluster.html", session, cluster=cluster, served=served,
        startup_parameters=masked(row.startup_parameters), parameters=masked(row.parameters),
    )  # fmt: skip


# -- hosts and OceanBase clusters -----------------------------------------------------------


@router.get("/hosts", response_class=HTMLResponse)
def hosts_page(request: Request, session: LoggedIn) -> Response:
    engine = engine_of(request)
    return page(
        request, "hosts.html", session, hosts=engine.hosts.list(),
        credentials=engine.credentials.list(),
    )  # fmt: skip


@router.get("/obclusters", response_class=HTMLResponse)
def ob_clusters_page(request: Request, session: LoggedIn) -> Response:
    found = ObClusters(engine_of(request)).list()
    return page(request, "obclusters.html", session, ob_clusters=found, error=None)


@router.post("/obclusters")
def ob_cluster_add(
    request: Request,
    session: LoggedIn,
    cluster_id: Annotated[str, Form(alias="obClusterId")] = "",
    name: Annotated[str, Form(alias="clusterName")] = "",
    rs_list: Annotated[str, Form(alias="rsList")] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",  # missing: refused as a wrong one (403)
) -> Response:
    """Register an OceanBase cluster (OCP's API has no call for it; the CLI's ``obcluster
    add`` makes the same one, and its checks are the only ones)."""
    check_csrf(request, session[1], csrf)
    engine = engine_of(request)
    number: int | str = (
        int(cluster_id) if cluster_id.isascii() and cluster_id.isdigit() else cluster_id
    )
    user, client = session[0], request.client.host if request.client else None
    try:
        with acting_as(user.name, user.id, client):  # its audit event: this user's, from there
            ObClusters(engine).add(number, name, rs_list=rs_list, password=password)  # type: ignore[arg-type]
    except OcpTaskError as exc:
        found = ObClusters(engine).list()
        return page(request, "obclusters.html", session, 400, ob_clusters=found, error=str(exc))
    return RedirectResponse("/obclusters", status_code=303)
