"""Child process of test_repro: the garbage-collected callback crash.

Bindings that hand the library a ctypes callback crash (exit 139) when the
callback object is garbage-collected while the library still holds it.
Here async clients with deliveries in flight to a slow receiver lose every
Python reference and are collected; one more is left open at exit.  The
process must get through all of it and exit 0.
"""
import asyncio
import gc
import os
import sys
import threading
import weakref

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import flaghook  # noqa: E402
from support import Receiver, flag_updated  # noqa: E402

EVENTS = 200


def library_threads():
    """Threads of this process that Python did not start: the library's
    pool and I/O threads, while a client lives."""
    python = {t.native_id for t in threading.enumerate()}
    return len([t for t in os.listdir("/proc/self/task") if int(t) not in python])


def client_in_flight(rcv):
    c = flaghook.Client(mode="async", allow_private=True, shutdown_timeout_ms=200,
                        log_level="debug")
    c.add_endpoint(rcv.url, secret=b"k", scope_id=1)
    for i in range(EVENTS):
        c.emit(flag_updated(n=i))
    return c


with Receiver(secret=b"k", hold=True) as rcv:
    for round_ in range(3):
        seen = len(rcv.requests)
        c = client_in_flight(rcv)
        rcv.wait_for(seen + 1)          # deliveries are on the wire, replies held
        assert library_threads() > 0
        ref = weakref.ref(c)
        del c
        for _ in range(3):
            gc.collect()
        assert ref() is None, "the client was not collected"
        assert library_threads() == 0, "the collected client was not freed"
        garbage = [[object()] * 100 for _ in range(1000)]   # reuse what was freed
        del garbage
        print("round %d: collected with deliveries in flight" % round_, flush=True)
    async def arm_and_cancel(c):
        waiter = asyncio.ensure_future(c.next_result())
        await asyncio.sleep(0)          # the waiter arms a reader
        waiter.cancel()
        try:
            await waiter
        except asyncio.CancelledError:
            pass

    async def dropped_in_a_loop():
        # The same inside asyncio, after a reader was armed on the queue's
        # descriptor and its waiter cancelled.
        c = client_in_flight(rcv)
        await arm_and_cancel(c)
        for _ in range(5):
            await asyncio.sleep(0)      # the loop runs the cancellation's callbacks
        ref = weakref.ref(c)
        del c
        gc.collect()
        assert ref() is None, "the client was not collected"
        for _ in range(20):
            await asyncio.sleep(0)      # the loop polls on
        print("asyncio: collected with deliveries in flight", flush=True)
    asyncio.run(dropped_in_a_loop())
    open_at_exit = client_in_flight(rcv)
    rcv.wait_for(len(rcv.requests) + 1)
    rcv.gate.set()
    print("exiting with a client open", flush=True)
    # No close(): the interpreter's exit frees it.
