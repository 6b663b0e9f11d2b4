"""Running subtasks: the runner and its drivers, slots and worker threads, one execution of a step
with its interrupts (timeout, cancel), the watchdog that renews leases and flushes logs, and the
services a running step may use.

No re-exports: import each module by its own name.
"""
