"""Child process of test_repro: the Node hang's Python analogue.

A flush on the main thread while results pile up in the queue, unread;
then close() must return promptly: the library needs no call back into
the interpreter to finish.  The same with a thread blocked reading
results, and with an asyncio loop in another thread waiting on them.
Prints how long each close() took; exits 0 when each took under LIMIT.
"""
import asyncio
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import flaghook  # noqa: E402
from support import WAIT, Receiver, flag_updated  # noqa: E402

EVENTS = 300
# A close() that waited for the results to be read, or drained for
# shutdown_timeout_ms, would take far longer than this.
LIMIT = 30.0


def client(rcv):
    c = flaghook.Client(mode="async", allow_private=True, shutdown_timeout_ms=int(LIMIT * 4000))
    c.add_endpoint(rcv.url, scope_id=1)
    return c


def timed_close(c, what):
    start = time.monotonic()
    c.close()
    took = time.monotonic() - start
    print("%s: close() took %.3f s" % (what, took), flush=True)
    assert took < LIMIT, what


with Receiver() as rcv:
    # 1. Results pile up while the main thread flushes; nobody reads them.
    c = client(rcv)
    for i in range(EVENTS):
        c.emit(flag_updated(n=i))
    c.flush(WAIT)
    assert c.stats()["endpoints"][0]["delivered"] == EVENTS
    assert c.get_result(0) is not None          # they are queued, unread
    timed_close(c, "results piled up")

    # 2. A thread blocked reading results (no timeout) while main closes.
    c = client(rcv)
    got = []
    reader = threading.Thread(target=lambda: got.extend(c.results()))
    reader.start()
    for i in range(EVENTS):
        c.emit(flag_updated(n=i))
    c.flush(WAIT)
    timed_close(c, "a thread reading")
    reader.join(LIMIT)
    assert not reader.is_alive(), "the reading thread did not end"
    assert len(got) <= EVENTS

    # 3. An asyncio loop in another thread waiting on the queue's
    #    descriptor while main flushes and closes.
    c = client(rcv)
    ended = []

    async def consume():
        async for _ in c.results_async():
            pass
        ended.append(True)
    loop_thread = threading.Thread(target=lambda: asyncio.run(consume()))
    loop_thread.start()
    for i in range(EVENTS):
        c.emit(flag_updated(n=i))
    c.flush(WAIT)
    timed_close(c, "an asyncio loop reading")
    loop_thread.join(LIMIT)
    assert not loop_thread.is_alive() and ended, "the asyncio reader did not end"
print("ok", flush=True)
