"""The worker processes of `--jobs N`: one per task, each sending its result back on its own pipe.

Not a multiprocessing.Pool: a Pool whose worker dies waits forever for the lost task, and its
terminate() can wait on a lock that an idle worker holds. Here a worker that dies is an error
the parent sees at once (end of file on its pipe), and whichever way the parent leaves (all
results in, an error, Ctrl-C, SIGTERM), every worker still running is terminated and reaped.

Workers ignore SIGINT: Ctrl-C reaches the whole foreground process group, and the parent
handles it for all of them by ending them, so a worker never prints a traceback of its own.
"""
from __future__ import annotations

import contextlib
import time
import traceback
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any, Callable, Iterable, Iterator, Sequence

from doctor.interrupts import as_worker, deferred, signals_blocked

JOIN_S = 1.0     # how long ended workers get to go before they are killed


class WorkerDied(RuntimeError):
    """A worker ended without sending its result (killed, out of memory)."""


class WorkerTraceback(Exception):
    """Where a worker's exception was raised, as the worker formatted it."""

    def __str__(self) -> str:
        return str(self.args[0])


@contextlib.contextmanager
def started(ctx: BaseContext, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Iterator[Any]]:
    """Start one process per task running `fn(task)`; yield an iterator of their results in
    task order (a worker's exception is raised there). On leaving, no worker is left running."""
    workers: list[tuple[BaseProcess, Connection]] = []
    try:
        for task in tasks:
            reader, writer = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_serve, args=(writer, fn, task), daemon=True)  # type: ignore[attr-defined]
            # A signal must neither reach the child before it ignores SIGINT (it would run our
            # handler and print a traceback) nor leave a started child out of `workers`.
            with deferred(), signals_blocked():
                proc.start()
                workers.append((proc, reader))
                # Ours closed, so that no later worker inherits it: end of file then means this
                # worker is gone.
                writer.close()
        yield _results(workers)
    finally:
        _end_all(proc for proc, _ in workers)
        for _, reader in workers:
            reader.close()


def _results(workers: list[tuple[BaseProcess, Connection]]) -> Iterator[Any]:
    for proc, reader in workers:
        try:
            ok, value, where = reader.recv()
        except EOFError:
            proc.join(JOIN_S)
            raise WorkerDied(f"a --jobs worker process ended (exit code {proc.exitcode}) "
                             "before it sent its result") from None
        if not ok:
            raise value from WorkerTraceback(where)
        yield value


def _serve(writer: Connection, fn: Callable[[Any], Any], task: Any) -> None:
    as_worker()
    try:
        outcome = (True, fn(task), "")
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
        outcome = (False, exc, traceback.format_exc())
    try:
        writer.send(outcome)
    except BrokenPipeError:
        return   # the parent is gone: nobody is waiting for the result
    except Exception as exc:  # noqa: BLE001 - a result or exception that does not pickle
        with contextlib.suppress(BrokenPipeError):
            writer.send((False, WorkerDied(f"a --jobs worker could not send its result: "
                                           f"{type(exc).__name__}: {exc}"), ""))


def _end_all(procs: Iterable[BaseProcess]) -> None:
    procs = list(procs)
    for proc in procs:
        if proc.is_alive():
            with contextlib.suppress(OSError):
                proc.terminate()
    deadline = time.monotonic() + JOIN_S
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join()
