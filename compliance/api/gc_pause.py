"""Cyclic garbage collection paused while a large classify answer is built.

Building a 10,000-product answer allocates a few hundred thousand small dicts and lists. They hold
no reference cycles (reference counting frees them), yet every 700 allocations start a collection
and every few thousand a full one, which walks everything alive: on a full batch that was a third of
the time. The pause is process-wide and shared by the worker's threads, so it is counted: collection
resumes when the last paused request finishes (and then runs once, for any cycles others made).
"""
from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, Callable, TypeVar

_lock = threading.Lock()
_state = {"paused": 0, "we_disabled": False}
T = TypeVar("T")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause cyclic garbage collection for the duration of the block."""
    with _lock:
        _state["paused"] += 1
        if _state["paused"] == 1 and gc.isenabled():
            gc.disable()
            _state["we_disabled"] = True
    try:
        yield
    finally:
        with _lock:
            _state["paused"] -= 1
            if _state["paused"] == 0 and _state["we_disabled"]:
                _state["we_disabled"] = False
                gc.enable()


def paused_iter(items: Iterator[T]) -> Iterator[T]:
    """Iterate with collection paused while each item is produced (a streamed body is built lazily)."""
    while True:
        with gc_paused():
            try:
                item = next(items)
            except StopIteration:
                return
        yield item


def pausing_gc(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: the view (decoding, validation, evaluation) runs with collection paused."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with gc_paused():
            return view(*args, **kwargs)
    return wrapper
