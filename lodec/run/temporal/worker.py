"""A lodec worker process: polls a task queue, runs ``RunWorkflow`` and the activities.

``serve`` returns when ``stop`` is set (SIGINT / SIGTERM in ``lodec worker``); activities still
running are cancelled (their sandboxes killed) and the workflow goes on on other workers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from datetime import timedelta

from .activities import Activities, WorkerSetup
from .connect import Connection, connect


async def serve(conn: Connection, setup: WorkerSetup, *, max_steps: int = 2, stop: asyncio.Event,
                on_ready: Callable[[], None] | None = None) -> None:
    """Serve ``conn.task_queue`` until ``stop`` is set.

    ``max_steps``: activities (steps) this worker runs at once.

    Raises:
        EngineError: the Temporal service cannot be reached.
    """
    from temporalio.worker import Worker

    from .workflow import RunWorkflow

    client = await connect(conn, identity=setup.identity)
    acts = Activities(setup)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max_steps + 2) as pool:
        asyncio.get_running_loop().set_default_executor(pool)  # asyncio.to_thread: verification and steps
        worker = Worker(client, task_queue=conn.task_queue, workflows=[RunWorkflow],
                        activities=[acts.plan, acts.run_step], max_concurrent_activities=max_steps,
                        # A worker that died holding a run's workflow: another one takes it over quickly.
                        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
                        graceful_shutdown_timeout=timedelta(seconds=2))
        async with worker:
            if on_ready is not None:
                on_ready()
            await stop.wait()
