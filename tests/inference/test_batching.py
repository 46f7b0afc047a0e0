"""The batching scheduler alone: what goes into one batch, the bounds, failures, shutdown."""

import asyncio
import threading

import pytest
from tunefactory.inference.batching import BatchScheduler, Job
from tunefactory.inference.engine import EngineBusy, EngineClosed
from tunefactory.inference.generation import resolve_generation


def params(**overrides):
    return resolve_generation(None, overrides, 1, None)


class Recorder:
    def __init__(self, gate=None):
        self.batches, self.gate = [], gate

    def __call__(self, jobs):
        if self.gate is not None:
            self.gate.wait(5)
        self.batches.append([job.id for job in jobs])
        for job in jobs:
            for row in range(len(job.rows)):
                job.emit("end", row, "stop", 0)


async def finish(job):
    while True:
        event = await job.events.get()
        if event[0] == "error":
            raise event[1]
        if event[0] == "end":
            return event


def run_jobs(scheduler, specs):
    async def main():
        jobs = [Job([[1]] * rows, p) for rows, p in specs]
        for job in jobs:
            scheduler.submit(job)
        await asyncio.gather(*(finish(job) for job in jobs))
        return [job.id for job in jobs]

    return asyncio.run(main())


def test_compatible_requests_share_a_batch_up_to_max_rows():
    gate = threading.Event()
    recorder = Recorder(gate)
    scheduler = BatchScheduler(recorder, max_rows=4, quiet_s=0.05, max_wait_s=0.2)
    try:
        gate.set()
        ids = run_jobs(scheduler, [(1, params()), (2, params()), (1, params()), (1, params())])
        assert [len(b) for b in recorder.batches] == [3, 1]
        assert sorted(i for b in recorder.batches for i in b) == sorted(ids)
    finally:
        scheduler.close()


def test_different_options_go_to_different_batches():
    recorder = Recorder()
    scheduler = BatchScheduler(recorder, max_rows=8, quiet_s=0.05, max_wait_s=0.2)
    try:
        run_jobs(scheduler, [(1, params(temperature=0.5)), (1, params(temperature=0.9)), (1, params(temperature=0.5))])
        assert sorted(len(b) for b in recorder.batches) == [1, 2]
    finally:
        scheduler.close()


def test_too_many_waiting_is_busy_and_closed_refuses():
    gate = threading.Event()
    scheduler = BatchScheduler(Recorder(gate), max_rows=1, max_waiting=2, quiet_s=0, max_wait_s=0)

    async def main():
        first = Job([[1]], params())
        scheduler.submit(first)  # taken by the worker, which waits at the gate
        await asyncio.sleep(0.1)
        scheduler.submit(Job([[1]], params()))
        scheduler.submit(Job([[1]], params()))
        with pytest.raises(EngineBusy):
            scheduler.submit(Job([[1]], params()))
        gate.set()
        await finish(first)

    try:
        asyncio.run(main())
    finally:
        scheduler.close()
    with pytest.raises(EngineClosed):
        scheduler.submit(object())


def test_a_failing_batch_fails_its_requests_only():
    calls = []

    def flaky(jobs):
        calls.append(len(jobs))
        if len(calls) == 1:
            raise RuntimeError("boom")
        Recorder()(jobs)

    scheduler = BatchScheduler(flaky, quiet_s=0, max_wait_s=0)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            run_jobs(scheduler, [(1, params())])
        run_jobs(scheduler, [(1, params())])
        assert asyncio.run(scheduler.run_alone(lambda: 42)) == 42
    finally:
        scheduler.close()


def test_close_fails_what_waits():
    gate = threading.Event()
    scheduler = BatchScheduler(Recorder(gate), max_rows=1, quiet_s=0, max_wait_s=0)

    async def main():
        running, waiting = Job([[1]], params()), Job([[1]], params())
        scheduler.submit(running)
        await asyncio.sleep(0.1)
        scheduler.submit(waiting)
        closer = threading.Thread(target=scheduler.close)
        closer.start()
        await asyncio.sleep(0.1)
        assert running.cancelled  # the running batch is told to stop
        gate.set()
        with pytest.raises(EngineClosed):
            await finish(waiting)
        closer.join(5)

    asyncio.run(main())
