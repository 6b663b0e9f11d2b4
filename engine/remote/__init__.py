"""Reaching hosts: SSH connections and their pool, the shell text wrapped around remote commands,
the host registry with pinned keys, and the SSH credentials hosts are created with.

No re-exports: import each module by its own name.
"""
