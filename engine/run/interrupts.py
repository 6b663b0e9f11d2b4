"""Throwing an Interrupt into another thread, and taking back one that has not landed yet.

CPython delivers an asynchronous exception at the target thread's next bytecode boundary, so it
stops busy loops and code that swallows ``Exception``, but not a blocking C call such as
``time.sleep(60)``: the exception lands when that call returns. The runner therefore never waits
on it: past a grace period it records the subtask as cancelled and abandons the thread.
"""

from __future__ import annotations

import ctypes

from engine.errors import Interrupt

_PROTO_SET = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)
_PROTO_CLEAR = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)
_set_async_exc = _PROTO_SET(("PyThreadState_SetAsyncExc", ctypes.pythonapi))
_clear_async_exc = _PROTO_CLEAR(("PyThreadState_SetAsyncExc", ctypes.pythonapi))


def throw(thread_ident: int, exc_type: type[Interrupt]) -> bool:
    """Schedule ``exc_type`` to be raised in the thread; False if the thread is gone."""
    return _set_async_exc(thread_ident, exc_type) == 1


def withdraw(thread_ident: int) -> None:
    """Cancel a scheduled exception that has not been raised yet (NULL clears it)."""
    _clear_async_exc(thread_ident, None)
