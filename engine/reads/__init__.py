"""Reading tasks back: snapshots rebuilt only when rows changed, task lists and their filters,
and the standard-library SQLite reader of the CLI's quick reads.

No re-exports: import each module by its own name.
"""
