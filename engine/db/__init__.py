"""Where records live: the store and its transactions, the tables, row revisions, the write lock,
statements compiled once, subtask logs, sealed secrets and where the database is.

No re-exports: import each module by its own name.
"""
