"""OCP task definitions built on the engine: what each OCP API call turns into. Each package
here registers itself with every Engine through the ``ocptask.task_packages`` entry points
(``engine.packages``): ``obclusters`` (the OceanBase cluster registry), ``hosts`` (batchCreate,
"Prepare host") and ``obproxy`` (an OBProxy cluster's life)."""
