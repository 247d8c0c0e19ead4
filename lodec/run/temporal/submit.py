"""Starting a run's workflow and following it: progress by query, the result when it ends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .connect import Connection, EngineError, connect
from .types import WORKFLOW, RunInput, RunOutput

#: How often the submitter asks the workflow for progress (seconds).
POLL_S = 0.5


def workflow_id(run: str) -> str:
    """The Temporal workflow id of lodec run ``run``: ``lodec-<run id>``."""
    return f"lodec-{run}"


async def submit(conn: Connection, inp: RunInput, *, on_progress: Callable[[dict[str, Any]], None] | None = None,
                 identity: str | None = None) -> RunOutput:
    """Start ``RunWorkflow`` for ``inp`` on ``conn.task_queue`` and wait for its result.

    ``on_progress`` gets the workflow's ``progress`` query (``{"started": [...], "done": {...}}``)
    every ``POLL_S`` while it runs. Cancelled (Ctrl-C, or SIGTERM through ``follow``), it cancels
    the workflow: the workers kill the steps' sandboxes.

    Raises:
        EngineError: the service cannot be reached, or the workflow failed (not a step: the
            workflow itself, e.g. terminated by an operator).
    """
    from temporalio.client import WorkflowFailureError

    client = await connect(conn, identity=identity)
    try:
        handle = await client.start_workflow(WORKFLOW, inp, id=workflow_id(inp.ref.run), task_queue=conn.task_queue,
                                             result_type=RunOutput)
    except Exception as exc:
        raise EngineError(f"cannot start the run's workflow on {conn.describe()}: {exc}") from None
    result = asyncio.ensure_future(handle.result())
    try:
        while not result.done():
            await asyncio.wait({result}, timeout=POLL_S)
            if on_progress is not None and not result.done():
                try:
                    progress = await handle.query("progress")
                except Exception:  # no worker has the workflow yet: ask again later
                    continue
                on_progress(progress)
        try:
            return result.result()
        except WorkflowFailureError as exc:
            failed = EngineError(f"the run's workflow {workflow_id(inp.ref.run)} failed: {exc.cause or exc}")
            failed.started = True
            raise failed from None
    except asyncio.CancelledError:
        result.cancel()
        try:
            await asyncio.shield(handle.cancel())
        except Exception:
            pass
        raise


async def follow(conn: Connection, inp: RunInput, *, on_progress: Callable[[dict[str, Any]], None] | None = None,
                 identity: str | None = None) -> RunOutput:
    """``submit``, with SIGTERM (on the main thread) cancelling it as Ctrl-C does: the workflow is
    cancelled, and ``asyncio.CancelledError`` reaches the caller."""
    import signal
    import threading

    task = asyncio.ensure_future(submit(conn, inp, on_progress=on_progress, identity=identity))
    loop = asyncio.get_running_loop()
    watched = threading.current_thread() is threading.main_thread()
    if watched:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await task
    finally:
        if watched:
            loop.remove_signal_handler(signal.SIGTERM)
