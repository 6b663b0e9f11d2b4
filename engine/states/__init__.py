"""OCP's state machine on the records: how subtasks and tasks move (``transitions``), the
operator's operations (retry, skip, cancel, rollback), which of them are permitted now, executors'
leases on running subtasks, and the holds that let one task at a time change a resource.

No re-exports: import each module by its own name.
"""
