"""The OceanBase cluster registry: the clusters an OBProxy's obLinks name, with their root servers
and the proxyro password (sealed), registered by the operator (``ocptask obcluster add``).

No re-exports: import ``tasks.obclusters.registry``.
"""
