"""Three ways to run replications: serially, with local joblib workers, or on Dask.

Every executor takes the same picklable tasks and one function and yields the results as
they finish (in any order); the caller writes each result as it arrives, so work done before
an interruption is kept. Each task runs with one BLAS thread (``threadpoolctl``), so that a
replication gives bit-identical numbers whichever executor runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from evaluation.errors import InvalidOptionError


def single_threaded(function: Callable[[Any], Any], task: Any) -> Any:
    """Run ``function(task)`` with every BLAS/OpenMP pool limited to one thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return function(task)


def run_serial(function: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]:
    """Yield ``function(task)`` for each task in order, in this process."""
    for task in tasks:
        yield single_threaded(function, task)


def run_joblib(function: Callable[[Any], Any], tasks: Sequence[Any], workers: int
               ) -> Iterator[Any]:
    """Yield results from ``workers`` local processes (joblib's loky backend) as they finish."""
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=workers, return_as="generator_unordered")
    yield from parallel(delayed(single_threaded)(function, task) for task in tasks)


def run_dask(function: Callable[[Any], Any], tasks: Sequence[Any], scheduler: Any
             ) -> Iterator[Any]:
    """Yield results from a Dask distributed cluster as they finish.

    Parameters
    ----------
    function, tasks
        What to run.
    scheduler
        The scheduler's address (``"tcp://host:8786"``) or a ``distributed.Client``.

    Raises
    ------
    InvalidOptionError
        If ``distributed`` is not installed or the scheduler cannot be reached.
    """
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - distributed is in the dev extra
        raise InvalidOptionError(
            "--scheduler needs Dask distributed; install it with "
            "`pip install 'kuntakokeilu-evaluation[cluster]'`.") from exc
    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler, timeout="20s") if own else scheduler
    except OSError as exc:
        raise InvalidOptionError(f"could not reach the Dask scheduler at {scheduler!r} "
                                 f"({exc}); check the address (tcp://host:port) and that "
                                 "the scheduler is running.") from exc
    try:
        futures = client.map(single_threaded, [function] * len(tasks), tasks, pure=False)
        for future in as_completed(futures):
            yield future.result()
    finally:
        if own:
            client.close()
