"""The Client: endpoints, emit, flush, results, stats and metrics.

No Python callable is ever handed to the library: results, disabled
endpoints and log records come from the client's result queue
(flaghook_result_next), whose descriptor (flaghook_results_fd) an asyncio
loop watches with add_reader.  So no library thread ever calls into the
interpreter, and a garbage-collected Client cannot leave the library
holding a dead callback.
"""

import asyncio
import collections
import ctypes
import json
import logging
import threading
import time
import weakref

from . import _errors
from ._json import SecretJSON, as_secret, as_text, dumps, event_bytes, json_string_body
from ._lib import ERROR_SIZE
from ._lib import library as _find_library

log = logging.getLogger("flaghook")

# Blocking waits are made in slices this long, so that close() from
# another thread is never held up longer than one slice.
_SLICE_MS = 250
_LOG_LEVELS = {"error": logging.ERROR, "warn": logging.WARNING, "info": logging.INFO,
               "debug": logging.DEBUG}
_MODES = ("sync", "async")


def _ms(seconds):
    return max(0, int(seconds * 1000 + 0.5))


class _Core:
    """The handle and who is using it.  Holds no reference to the Client,
    so that the Client's finalizer can hold this and free the handle."""

    def __init__(self, lib, handle, mode):
        self.lib = lib
        self.handle = handle
        self.mode = mode
        self.cond = threading.Condition()
        self.users = 0
        self.closing = False
        self.closed = False
        self.readers = {}
        self.sync_lock = threading.Lock()
        self.fd = None
        if mode == "async":
            fd = ctypes.c_int(-1)
            rc = lib.c_results_fd(handle, ctypes.byref(fd))
            if rc:
                raise lib.error(rc, lib.client_error(handle))
            self.fd = fd.value

    def closed_error(self):
        return _errors.ClosedError(self.lib.code("FLAGHOOK_ESTATE"), "the client is closed",
                                   "FLAGHOOK_ESTATE")

    # ---- using the handle -----------------------------------------------

    def enter(self):
        with self.cond:
            if self.closing:
                raise self.closed_error()
            self.users += 1
            return self.handle

    def leave(self):
        with self.cond:
            self.users -= 1
            if not self.users:
                self.cond.notify_all()

    def fail(self, rc, handle):
        """The exception for a call that takes no error buffer: the detail
        is the client's own last error, whichever thread the call ran on."""
        return self.lib.error(rc, self.lib.client_error(handle))

    # ---- the result queue -------------------------------------------------

    def _next(self, handle, timeout_ms):
        out = ctypes.POINTER(ctypes.c_char)()
        out_len = ctypes.c_size_t()
        rc = self.lib.c_result_next(handle, timeout_ms, ctypes.byref(out), ctypes.byref(out_len))
        if rc == self.lib.constants["FLAGHOOK_ETIMEOUT"]:
            return None
        if rc:
            raise self.fail(rc, handle)
        return json.loads(self.lib.take_string(out, out_len.value).decode("utf-8"))

    def take(self, timeout_ms):
        """The next result or disabled record, waiting up to timeout_ms;
        log records on the way go to the "flaghook" logger.  None: none."""
        handle = self.enter()
        try:
            while True:
                rec = self._next(handle, timeout_ms)
                if rec is None or not _forward_log(rec):
                    return rec
                timeout_ms = 0
        finally:
            self.leave()

    def wait_record(self, timeout):
        """take() with a timeout in seconds (None: until the client is
        closed), in slices; ClosedError when it is closed meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            slice_ms = _SLICE_MS
            if deadline is not None:
                slice_ms = min(slice_ms, _ms(deadline - time.monotonic()))
            rec = self.take(slice_ms)
            if rec is not None:
                return rec
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def drain(self, handle):
        """Every record queued now (SYNC mode, under sync_lock)."""
        records = []
        while True:
            rec = self._next(handle, 0)
            if rec is None:
                return records
            if not _forward_log(rec):
                records.append(rec)

    # ---- asyncio readers ----------------------------------------------------

    def reader(self, loop):
        with self.cond:
            if self.closing:
                raise self.closed_error()
            for other in [l for l in self.readers if l.is_closed()]:
                del self.readers[other]
            r = self.readers.get(loop)
            if r is None:
                r = self.readers[loop] = _AsyncReader(self, loop)
            return r

    def _detach_readers(self):
        exc = self.closed_error()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        with self.cond:
            readers = list(self.readers.items())
            self.readers.clear()
        for loop, reader in readers:
            if loop.is_closed():
                continue
            if loop is running or not loop.is_running():
                reader.detach(exc)
                continue
            done = threading.Event()

            def detach(reader=reader, done=done):
                try:
                    reader.detach(exc)
                finally:
                    done.set()
            try:
                loop.call_soon_threadsafe(detach)
            except RuntimeError:    # closed meanwhile
                continue
            # The loop's thread removes the reader before the descriptor
            # goes away with the client; a loop that does not run for this
            # long is not waited for.
            done.wait(5.0)

    # ---- closing --------------------------------------------------------------

    def close(self):
        if self.begin_close():
            try:
                self._detach_readers()
            finally:
                self.finish_close()
        else:
            self.wait_closed()

    def begin_close(self):
        """True for the one caller that is to close the client."""
        with self.cond:
            if self.closing:
                return False
            self.closing = True
            self.cond.notify_all()
            return True

    def wait_closed(self):
        with self.cond:
            while not self.closed:
                self.cond.wait()

    def finish_close(self):
        with self.cond:
            while self.users:
                self.cond.wait()
            handle, self.handle = self.handle, None
        try:
            if handle:
                self.lib.c_client_free(handle)
        finally:
            with self.cond:
                self.closed = True
                self.cond.notify_all()


def _forward_log(rec):
    """True when rec is a log record (and has gone to the logger)."""
    if rec.get("kind") != "log":
        return False
    log.log(_LOG_LEVELS.get(rec.get("level"), logging.WARNING), "%s", rec.get("message", ""))
    return True


class _AsyncReader:
    """The waiters of one event loop on one client's result queue: one
    add_reader on the queue's descriptor while anyone waits, records handed
    out in the order the waiters came.  Used only in the loop's thread."""

    def __init__(self, core, loop):
        self.core = core
        self.loop = loop
        self.waiters = collections.deque()
        self.armed = False

    def wait(self):
        fut = self.loop.create_future()
        self.waiters.append(fut)
        fut.add_done_callback(self._done)
        if not self.armed:
            self.loop.add_reader(self.core.fd, self._readable)
            self.armed = True
        return fut

    def _done(self, fut):
        if fut.cancelled() and all(w.done() for w in self.waiters):
            self.waiters.clear()
            self._disarm()

    def _readable(self):
        while self.waiters:
            fut = self.waiters[0]
            if fut.done():
                self.waiters.popleft()
                continue
            try:
                rec = self.core.take(0)
            except BaseException as e:  # closed meanwhile, or an error
                self.detach(e)
                return
            if rec is None:
                return
            self.waiters.popleft()
            fut.set_result(rec)
        self._disarm()

    def _disarm(self):
        if self.armed:
            self.armed = False
            if not self.loop.is_closed():
                self.loop.remove_reader(self.core.fd)

    def detach(self, exc):
        self._disarm()
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(exc)


class Client:
    """A libflaghook client (flaghook_client_new_json).

    Options are the members of flaghook_client_options by name, as keyword
    arguments or a dict: mode="sync" (default) or "async", timeout_ms,
    retry={"kind": "standard"}, allow_private=True, allow_cidrs=[...],
    shutdown_timeout_ms, max_pending, ...  The client always keeps a result
    queue ("result_queue": true).

    SYNC: emit() delivers before it returns and returns the event's results.
    ASYNC: emit() queues and returns; take the results with results(),
    get_result(), or in asyncio with `await next_result()` and
    `async for r in results_async()`.  Log records go to the "flaghook"
    logger.

    One client may be used from many threads.  close() (or leaving a
    `with` block) waits for calls in progress on other threads, then frees
    the client: it delivers for up to shutdown_timeout_ms and abandons the
    rest.  A client that is garbage-collected or still open at exit is
    closed then.
    """

    def __init__(self, options=None, *, library=None, **kwargs):
        lib = _find_library(library)
        opts = dict(options or {})
        opts.update(kwargs)
        if opts.get("result_queue", True) is not True:
            raise ValueError("the Python binding takes results from the queue: result_queue "
                             "must stay true")
        opts["result_queue"] = True
        mode = opts.get("mode", "sync")
        if mode not in _MODES:
            raise ValueError("mode must be \"sync\" or \"async\"")
        if opts.get("timers", "thread") != "thread":
            raise ValueError("timers=\"tick\" needs flaghook_tick, which the Python binding does "
                             "not drive: leave timers out")
        handle = ctypes.c_void_p()
        err = ctypes.create_string_buffer(ERROR_SIZE)
        rc = lib.c_client_new_json(ctypes.byref(handle), dumps(opts), err, ERROR_SIZE)
        if rc:
            raise lib.error_from(rc, err)
        try:
            self._core = _Core(lib, handle.value, mode)
        except BaseException:
            lib.c_client_free(handle.value)
            raise
        self._finalizer = weakref.finalize(self, self._core.close)
        self.mode = mode

    @property
    def library(self):
        return self._core.lib

    @property
    def closed(self):
        return self._core.closing

    def __repr__(self):
        state = "closed" if self._core.closing else "open"
        return "<flaghook.Client mode={!r} {}>".format(self.mode, state)

    # ---- life ---------------------------------------------------------------

    def close(self):
        """Frees the client (flaghook_client_free): waits for calls in
        progress on other threads, ends every asyncio wait on its results
        with ClosedError, delivers for up to shutdown_timeout_ms and
        abandons the rest.  Results still queued are dropped.  Idempotent;
        a close() racing another returns once the client is freed."""
        self._finalizer.detach()
        self._core.close()

    async def aclose(self):
        """close() for asyncio: the readers of this loop are removed at
        once; the freeing (which may drain) runs in the default executor."""
        self._finalizer.detach()
        core = self._core
        loop = asyncio.get_running_loop()
        if core.begin_close():
            try:
                core._detach_readers()      # in the loop's thread: at once
            finally:
                await loop.run_in_executor(None, core.finish_close)
        else:
            await loop.run_in_executor(None, core.wait_closed)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.aclose()

    # ---- endpoints ------------------------------------------------------------

    def add_endpoint(self, url, secret=None, *, events=None, scope="environment", scope_id=None,
                     standard_secrets=None, **options):
        """Registers an endpoint; returns its id.

        secret: bytes (or str, as UTF-8) for X-Flagsmith-Signature, which
        the library takes as UTF-8 text without NUL, CR or LF (SecretError
        otherwise, never quoting it); None or empty: sent unsigned.
        events: names ("FLAG_UPDATED", ...); None: the scope's default.
        scope: "environment" or "organisation", scope_id its id.
        standard_secrets: "whsec_..." secrets for Standard Webhooks
        headers.  Other options by their C names: profile, compact, fifo,
        max_in_flight, retry, id, disabled, ca_file, ca_path, client_cert,
        client_key, client_key_password.
        """
        if "secret_hex" in options:
            raise TypeError("give the secret's bytes as secret=")
        public = {"url": as_text(url, "url").decode("utf-8", "surrogatepass"), "scope": scope}
        if scope_id is not None:
            public["scope_id"] = scope_id
        if events is not None:
            public["events"] = [events] if isinstance(events, str) else list(events)
        password = options.pop("client_key_password", None)
        public.update(options)
        hex_members = {}
        if secret is not None:
            key = as_secret(secret)
            if key:
                hex_members["secret_hex"] = key
        strings = {}
        if password is not None:
            strings["client_key_password"] = json_string_body(password, "client_key_password")
        lists = {}
        if standard_secrets is not None:
            if isinstance(standard_secrets, (str, bytes)):
                standard_secrets = [standard_secrets]
            lists["standard_secrets"] = [json_string_body(s, "standard secret")
                                         for s in standard_secrets]
        text = SecretJSON(public, hex_members, strings, lists)
        out_id = ctypes.c_uint64()
        err = ctypes.create_string_buffer(ERROR_SIZE)
        core = self._core
        handle = core.enter()
        try:
            rc = core.lib.c_endpoint_add_json(handle, ctypes.byref(out_id), text.buf, err, ERROR_SIZE)
        finally:
            core.leave()
            text.wipe()
        if rc:
            raise core.lib.error_from(rc, err)
        return out_id.value

    def remove_endpoint(self, endpoint_id):
        """Removes an endpoint (NotFoundError when there is none)."""
        self._call_id(self._core.lib.c_endpoint_remove, endpoint_id)

    def set_endpoint_enabled(self, endpoint_id, enabled=True):
        """Enables or disables an endpoint; disabling gives up (ASYNC) what
        still waits for it."""
        self._call_id(self._core.lib.c_endpoint_set_enabled, endpoint_id, 1 if enabled else 0)

    def _call_id(self, fn, endpoint_id, *args):
        endpoint_id = _endpoint_id(endpoint_id)
        core = self._core
        handle = core.enter()
        try:
            rc = fn(handle, endpoint_id, *args)
            if rc:
                raise core.fail(rc, handle)
        finally:
            core.leave()

    def url_check(self, url):
        """What the client's SSRF guard says of a URL, sending nothing:
        None when it may be sent to, else URLError, RefusedError or
        FlaghookError (FLAGHOOK_ETRANSPORT: the name does not resolve).
        A blocking name lookup."""
        core = self._core
        handle = core.enter()
        try:
            core.lib.check_url(handle, url)
        finally:
            core.leave()

    # ---- emitting -----------------------------------------------------------------

    def emit(self, event):
        """Emits an event: a dict, or its JSON as str or bytes.

        SYNC: delivers to every matching endpoint at once and returns the
        list of their result records ([] when none matched); when any
        endpoint did not take it, raises DeliveryError, whose `results`
        has them all.  SYNC emits of one client run one at a time, so that
        each returns its own results.
        ASYNC: validates, queues and returns None; QueueFullError when the
        queue is full.
        Invalid events raise EventError naming the JSON path.
        """
        body = event_bytes(event)
        core = self._core
        lib = core.lib
        err = ctypes.create_string_buffer(ERROR_SIZE)
        if core.mode == "async":
            handle = core.enter()
            try:
                rc = lib.c_emit_json(handle, body, len(body), err, ERROR_SIZE)
            finally:
                core.leave()
            if rc:
                raise lib.error_from(rc, err)
            return None
        with core.sync_lock:
            handle = core.enter()
            try:
                rc = lib.c_emit_json(handle, body, len(body), err, ERROR_SIZE)
                records = core.drain(handle)
            finally:
                core.leave()
        results = []
        for rec in records:
            if rec.get("kind") == "result":
                results.append(rec)
            else:
                log.warning("endpoint %s disabled: %s", rec.get("endpoint_id"), rec.get("reason"))
        if rc == 0:
            return results
        if rc == lib.constants["FLAGHOOK_EDELIVERY"]:
            raise _errors.DeliveryError(rc, err.value.decode("utf-8", "replace"),
                                        "FLAGHOOK_EDELIVERY", results=results)
        raise lib.error_from(rc, err)

    def flush(self, timeout=None):
        """ASYNC: waits until every accepted delivery has finished; raises
        flaghook.TimeoutError after `timeout` seconds (None: no limit).
        SYNC: returns at once."""
        core = self._core
        lib = core.lib
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            slice_ms = _SLICE_MS
            if deadline is not None:
                slice_ms = min(slice_ms, _ms(deadline - time.monotonic()))
            handle = core.enter()
            try:
                rc = lib.c_flush(handle, slice_ms)
                if rc == 0:
                    return
                if rc != lib.constants["FLAGHOOK_ETIMEOUT"]:
                    raise core.fail(rc, handle)
            finally:
                core.leave()
            if deadline is not None and time.monotonic() >= deadline:
                raise lib.error(rc, "deliveries still pending after {:g} s".format(timeout))

    # ---- results --------------------------------------------------------------------

    def _require_async(self):
        if self._core.mode != "async":
            raise _errors.InvalidArgumentError(
                self._core.lib.code("FLAGHOOK_EINVAL"),
                "a SYNC client returns each event's results from emit()", "FLAGHOOK_EINVAL")

    def get_result(self, timeout=0.0):
        """The next record ({"kind": "result", ...} or {"kind": "disabled",
        ...}), waiting up to `timeout` seconds (None: no limit); None when
        none came; ClosedError once the client is closed.  ASYNC clients."""
        self._require_async()
        return self._core.wait_record(timeout)

    def results(self, timeout=None):
        """Iterates over records as they come; ends when none came for
        `timeout` seconds (None: when the client is closed)."""
        self._require_async()
        core = self._core
        while True:
            try:
                rec = core.wait_record(timeout)
            except _errors.ClosedError:
                return
            if rec is None:
                return
            yield rec

    async def next_result(self, timeout=None):
        """The next record, for asyncio: waits on the queue's descriptor
        with loop.add_reader, never in a thread.  flaghook.TimeoutError
        after `timeout` seconds; ClosedError when the client is closed."""
        self._require_async()
        core = self._core
        rec = core.take(0)
        if rec is not None:
            return rec
        fut = core.reader(asyncio.get_running_loop()).wait()
        if timeout is None:
            return await fut
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise core.lib.error(core.lib.code("FLAGHOOK_ETIMEOUT"),
                                 "no result within {:g} s".format(timeout)) from None

    async def results_async(self, timeout=None):
        """`async for r in client.results_async()`: records as they come;
        ends when none came for `timeout` seconds (None: when the client
        is closed)."""
        while True:
            try:
                rec = await self.next_result(timeout)
            except (_errors.ClosedError, _errors.TimeoutError):
                return
            yield rec

    # ---- counters -----------------------------------------------------------------

    def _string(self, fn):
        core = self._core
        out = ctypes.POINTER(ctypes.c_char)()
        out_len = ctypes.c_size_t()
        handle = core.enter()
        try:
            rc = fn(handle, ctypes.byref(out), ctypes.byref(out_len))
            if rc:
                raise core.fail(rc, handle)
        finally:
            core.leave()
        return core.lib.take_string(out, out_len.value).decode("utf-8")

    def stats(self):
        """{"client": {...}, "endpoints": [{...}, ...]} (flaghook_stats_json)."""
        return json.loads(self._string(self._core.lib.c_stats_json))

    def metrics(self):
        """Prometheus text exposition (flaghook_metrics)."""
        return self._string(self._core.lib.c_metrics)


def _endpoint_id(value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("an endpoint id is an int")
    if not 0 < value < 1 << 64:
        raise ValueError("an endpoint id is between 1 and 2**64 - 1")
    return value

