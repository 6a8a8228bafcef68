"""asyncio: results through loop.add_reader on the queue's descriptor."""

import asyncio
import unittest

import flaghook

from support import WAIT, Receiver, flag_updated


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, WAIT * 2))


class AsyncioTest(unittest.TestCase):
    def setUp(self):
        self.rcv = Receiver()
        self.rcv.__enter__()
        self.addCleanup(self.rcv.__exit__, None, None, None)

    def client(self, **options):
        c = flaghook.Client(mode="async", allow_private=True, **options)
        self.addCleanup(c.close)
        self.endpoint = c.add_endpoint(self.rcv.url, scope_id=1)
        return c

    def test_next_result(self):
        c = self.client()

        async def main():
            c.emit(flag_updated())
            return await c.next_result(timeout=WAIT)
        r = run(main())
        self.assertEqual((r["kind"], r["outcome"], r["endpoint_id"]), ("result", "delivered", self.endpoint))

    def test_async_for(self):
        c = self.client()
        n = 25

        async def main():
            for i in range(n):
                c.emit(flag_updated(n=i))
            got = []
            async for r in c.results_async(timeout=WAIT):
                got.append(r)
                if len(got) == n:
                    break
            return got
        got = run(main())
        self.assertEqual(len({r["event_id"] for r in got}), n)
        self.assertTrue(all(r["outcome"] == "delivered" for r in got))

    def test_many_waiters_each_get_one(self):
        c = self.client()
        n = 8

        async def main():
            waiters = [asyncio.ensure_future(c.next_result(timeout=WAIT)) for _ in range(n)]
            await asyncio.sleep(0)          # let every waiter register first
            for i in range(n):
                c.emit(flag_updated(n=i))
            return await asyncio.gather(*waiters)
        got = run(main())
        self.assertEqual(len({r["event_id"] for r in got}), n)
        self.assertEqual(len(self.rcv.wait_for(n)), n)

    def test_timeout_leaves_no_reader(self):
        c = self.client()

        async def main():
            with self.assertRaises(flaghook.TimeoutError) as cm:
                await c.next_result(timeout=0.05)
            self.assertEqual(cm.exception.name, "FLAGHOOK_ETIMEOUT")
            loop = asyncio.get_running_loop()
            await asyncio.sleep(0)
            reader = c._core.readers.get(loop)
            self.assertFalse(reader is not None and reader.armed)
            # and the reader works again afterwards
            c.emit(flag_updated())
            return await c.next_result(timeout=WAIT)
        self.assertEqual(run(main())["outcome"], "delivered")

    def test_close_ends_the_waits(self):
        c = self.client()

        async def main():
            waiter = asyncio.ensure_future(c.next_result())
            stream = []

            async def consume():
                async for r in c.results_async():
                    stream.append(r)
            consumer = asyncio.ensure_future(consume())
            await asyncio.sleep(0)
            await c.aclose()
            with self.assertRaises(flaghook.ClosedError):
                await waiter
            await consumer                  # ends, does not raise
            self.assertTrue(c.closed)
        run(main())

    def test_async_with_and_executor_emits(self):
        async def main():
            async with flaghook.Client(mode="sync", allow_private=True) as c:
                c.add_endpoint(self.rcv.url, scope_id=1)
                loop = asyncio.get_running_loop()
                results = await loop.run_in_executor(None, c.emit, flag_updated())
                bad = flag_updated()
                del bad["data"]["changed_by"]
                with self.assertRaises(flaghook.EventError) as cm:
                    await loop.run_in_executor(None, c.emit, bad)
                self.assertIn("$.data.changed_by", cm.exception.message)
            self.assertTrue(c.closed)
            return results
        [r] = run(main())
        self.assertEqual(r["outcome"], "delivered")


if __name__ == "__main__":
    unittest.main()
