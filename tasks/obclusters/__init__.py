"""The OceanBase cluster registry: the clusters an OBProxy's obLinks name, with their root servers
and the proxyro password (sealed), registered by the operator (``ocptask obcluster add``).

Import ``tasks.obclusters.registry``; this module only registers the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.packages import Declarations


def register(declare: Declarations) -> None:
    """Its table (``ob_cluster``)."""
    from .registry import ObClusterRecord

    declare.table(ObClusterRecord)
