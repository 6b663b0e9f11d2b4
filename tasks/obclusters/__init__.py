"""The OceanBase cluster registry: the clusters an OBProxy's obLinks name, with their root servers
and the proxyro password (sealed), registered by the operator (``ocptask obcluster add``).

Import ``tasks.obclusters.registry``; this module only registers the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.packages import Declarations


def register(declare: Declarations) -> None:
    """Its table (``ob_cluster``), and its clusters as things that exist: a purge keeps the
    last task about each."""
    from .registry import ObClusterRecord, registered

    declare.table(ObClusterRecord)
    declare.subjects_that_exist(registered)
