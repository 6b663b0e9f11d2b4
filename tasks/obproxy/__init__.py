"""OBProxy cluster tasks: OCP's ``POST /api/v2/obproxy/clusters`` and what it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .create import create_cluster
from .edits import ClusterEdit, add_links, edit_cluster, remove_link
from .lifecycle import (
    add_obproxies,
    delete_cluster,
    delete_obproxies,
    delete_servers,
    restart_obproxies,
    start_obproxies,
    stop_obproxies,
    upgrade_obproxies,
)
from .plan import plan_cluster
from .request import CreateObproxyClusterRequest, ObLink, ObproxyInstallParam, ObproxyParameter
from .takeover import TakeOverRequest, take_over_obproxies
from .templates import INSTALL_OBPROXY

if TYPE_CHECKING:
    from engine.packages import Declarations


def register(declare: Declarations) -> None:
    """Its tables (clusters and their servers), the OBProxies that keep a host in use and that
    the host's record lists, the commands its install chain runs on hosts, and what a purge
    keeps: the last task about each cluster, and the tasks its rows were made by."""
    from .host_services import obproxy_services
    from .install_steps import COMMANDS_TO_CHECK
    from .records import (
        ObproxyClusterRecord,
        ObproxyServerRecord,
        existing_clusters,
        obproxy_on_host,
        referenced_tasks,
    )

    declare.table(ObproxyClusterRecord, ObproxyServerRecord)
    declare.host_guard(obproxy_on_host)
    declare.services_on_hosts(obproxy_services)
    declare.host_commands_needed(*COMMANDS_TO_CHECK)
    declare.subjects_that_exist(existing_clusters)
    declare.tasks_referenced(referenced_tasks)
    for old, new in _MOVED.items():  # tasks recorded before the modules were renamed
        declare.module_moved(f"{__name__}.{old}", f"{__name__}.{new}")


_MOVED = {
    "host_steps": "install_steps",
    "steps": "cluster_steps",
    "server_steps": "lifecycle_steps",
}

__all__ = [
    "register",
    "add_obproxies",
    "delete_cluster",
    "delete_obproxies",
    "delete_servers",
    "restart_obproxies",
    "start_obproxies",
    "stop_obproxies",
    "take_over_obproxies",
    "upgrade_obproxies",
    "ClusterEdit",
    "add_links",
    "edit_cluster",
    "remove_link",
    "INSTALL_OBPROXY",
    "CreateObproxyClusterRequest",
    "ObLink",
    "ObproxyInstallParam",
    "ObproxyParameter",
    "TakeOverRequest",
    "create_cluster",
    "plan_cluster",
]
