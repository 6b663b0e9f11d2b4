"""OBProxy cluster tasks: OCP's ``POST /api/v2/obproxy/clusters`` and what it runs."""

from __future__ import annotations

from .create import create_cluster
from .edits import ClusterEdit, add_links, edit_cluster, remove_link
from .lifecycle import (
    add_obproxies,
    delete_cluster,
    delete_obproxies,
    restart_obproxies,
    start_obproxies,
    stop_obproxies,
    upgrade_obproxies,
)
from .plan import plan_cluster
from .request import CreateObproxyClusterRequest, ObLink, ObproxyInstallParam, ObproxyParameter
from .templates import INSTALL_OBPROXY

__all__ = [
    "add_obproxies",
    "delete_cluster",
    "delete_obproxies",
    "restart_obproxies",
    "start_obproxies",
    "stop_obproxies",
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
    "create_cluster",
    "plan_cluster",
]
