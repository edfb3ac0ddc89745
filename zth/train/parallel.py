"""Independent training runs side by side: one process and one CPU thread each.

Small models gain little from a second thread and much from a second core, so a ladder of
small runs finishes sooner as separate processes. A run's result depends only on its job,
not on how many workers there are or which one ran it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

from zth.sysinfo import usable_cores

__all__ = ["train_many"]


def train_many(fn: Callable[..., Any], jobs: Sequence[dict], workers: int | None = None) -> list[Any]:
    """``[fn(**job) for job in jobs]``, in ``workers`` processes of one thread each.

    ``fn`` is a training function that can be imported by name (e.g. ``zth.gpt.train.train``),
    each job its keyword arguments; the runs are silent (``log=None``). ``workers`` defaults
    to the usable CPU cores; with one worker (or one job) the jobs run here, one after another,
    on one thread.
    """
    jobs = [{**job, "log": None} for job in jobs]
    workers = min(workers or usable_cores(), len(jobs))
    if workers <= 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return [fn(**job) for job in jobs]
        finally:
            torch.set_num_threads(threads)
    spawn = multiprocessing.get_context("spawn")  # forking a process that has run OpenMP can hang
    with ProcessPoolExecutor(workers, spawn, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        return list(pool.map(_call, [fn] * len(jobs), jobs))


def _call(fn: Callable[..., Any], job: dict) -> Any:
    return fn(**job)
