"""Calls from a ThreadPoolExecutor: every error carries its own call's
detail (the *_json functions' error buffer, not the thread-local
flaghook_last_error), blocking calls release the GIL, and SYNC emits from
many threads each get their own results."""

import asyncio
import concurrent.futures
import unittest

import flaghook

from support import WAIT, Receiver, flag_updated

# Bad events, each wrong at its own path.
BROKEN = {
    "$.data.changed_by": lambda ev: ev["data"].pop("changed_by"),
    "$.data.timestamp": lambda ev: ev["data"].update(timestamp="soon"),
    "$.data.new_state.enabled": lambda ev: ev["data"]["new_state"].update(enabled="yes"),
    "$.data.new_state.feature.id": lambda ev: ev["data"]["new_state"]["feature"].update(id=2**64),
    "$.data.previous_state.environment.name":
        lambda ev: ev["data"]["previous_state"]["environment"].pop("name"),
    "$.data.new_state.feature.project.id":
        lambda ev: ev["data"]["new_state"]["feature"]["project"].update(id="one"),
    "$.event_type": lambda ev: ev.update(event_type="FLAG_EATEN"),
}


def broken(path, n=0):
    ev = flag_updated(n=n)
    BROKEN[path](ev)
    return ev


class PoolTest(unittest.TestCase):
    def check_each_own_detail(self, call, jobs=400, workers=8):
        paths = sorted(BROKEN)

        def job(i):
            path = paths[i % len(paths)]
            if i % 3 == 0:
                call(flag_updated(n=i))     # successes in between clear nothing
                return None
            try:
                call(broken(path, i))
            except flaghook.EventError as e:
                return path, e.message
            return path, "no error"
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            outcomes = [o for o in pool.map(job, range(jobs)) if o]
        self.assertTrue(outcomes)
        for path, message in outcomes:
            self.assertTrue(message.startswith(path + ":"), (path, message))

    def test_render(self):
        self.check_each_own_detail(flaghook.render)

    def test_async_emit(self):
        with Receiver() as rcv, flaghook.Client(mode="async", allow_private=True) as c:
            c.add_endpoint(rcv.url, scope_id=1)
            self.check_each_own_detail(c.emit)
            c.flush(WAIT)

    def test_run_in_executor(self):
        async def main(c):
            loop = asyncio.get_running_loop()
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                calls = [loop.run_in_executor(pool, c.emit, broken(p)) for p in sorted(BROKEN)]
                outcomes = await asyncio.gather(*calls, return_exceptions=True)
            return outcomes
        with flaghook.Client(mode="async", allow_private=True) as c:
            outcomes = asyncio.run(main(c))
        for path, e in zip(sorted(BROKEN), outcomes):
            self.assertIsInstance(e, flaghook.EventError)
            self.assertTrue(e.message.startswith(path + ":"), (path, e.message))

    def test_sync_emits_from_many_threads(self):
        n = 24
        with Receiver() as rcv, flaghook.Client(allow_private=True) as c:
            a = c.add_endpoint(rcv.url, scope_id=1)
            b = c.add_endpoint(rcv.url, scope_id=1)
            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                outcomes = list(pool.map(lambda i: c.emit(flag_updated(n=i)), range(n)))
        for results in outcomes:
            # Each call got its own event's two results.
            self.assertEqual(sorted(r["endpoint_id"] for r in results), sorted([a, b]))
            self.assertEqual(len({r["event_id"] for r in results}), 1)
        self.assertEqual(len({rs[0]["event_id"] for rs in outcomes}), n)
        self.assertEqual(len(rcv.requests), 2 * n)

    def test_blocking_calls_release_the_gil(self):
        # The receiver is Python: it can only answer (and the test can only
        # see the request arrive) while emit and flush wait without the GIL.
        with Receiver(hold=True) as rcv, flaghook.Client(allow_private=True) as sync_c, \
                flaghook.Client(mode="async", allow_private=True) as async_c:
            sync_c.add_endpoint(rcv.url, scope_id=1)
            async_c.add_endpoint(rcv.url, scope_id=1)
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                emitted = pool.submit(sync_c.emit, flag_updated())
                async_c.emit(flag_updated())
                flushed = pool.submit(async_c.flush, WAIT)
                rcv.wait_for(2)
                self.assertFalse(emitted.done())
                self.assertFalse(flushed.done())
                rcv.gate.set()
                self.assertEqual(emitted.result(WAIT)[0]["outcome"], "delivered")
                self.assertIsNone(flushed.result(WAIT))

    def test_close_waits_for_calls_in_progress(self):
        with Receiver(hold=True) as rcv:
            c = flaghook.Client(allow_private=True)
            c.add_endpoint(rcv.url, scope_id=1)
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                emitted = pool.submit(c.emit, flag_updated())
                rcv.wait_for(1)
                closing = pool.submit(c.close)
                core = c._core
                with core.cond:
                    self.assertTrue(core.cond.wait_for(lambda: core.closing, WAIT))
                # close() must not free the client under the running emit.
                self.assertFalse(closing.done())
                rcv.gate.set()
                self.assertEqual(len(emitted.result(WAIT)), 1)
                closing.result(WAIT)
            self.assertTrue(c.closed)


if __name__ == "__main__":
    unittest.main()
