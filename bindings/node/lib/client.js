'use strict';
// A client: endpoints, emit, flush, results, close.
//
// The library never calls into JS: results come from the client's result
// queue.  Its descriptor is watched by libuv (a koffi poll handle) only
// while someone wants records, and records are read with
// flaghook_result_next(client, 0, ...), which never waits, on the JS
// thread.  Every call that can wait (emit in SYNC mode or on a full queue,
// flush, free) has an Async form that runs it on a libuv worker thread
// through koffi's .async, and takes the failure's detail from the call's
// own error buffer or from flaghook_client_last_error, never from the
// thread-local flaghook_last_error.

const { EventEmitter } = require('events');
const native = require('./native');
const json = require('./json');
const { eventBytes } = require('./functions');

const RECORD_EVENTS = ['record', 'result', 'disabled', 'log'];
const DRAIN_BATCH = 256;
const DEFAULT_SHUTDOWN_MS = 5000;

// A client that becomes unreachable without close() is closed on worker
// threads (flush for its shutdown time, then free).  It cannot be in use
// then: every pending call, watcher and listener holds the client itself.
const finalized = { started: 0, finished: 0 };
const registry = new FinalizationRegistry((state) => {
  if (state.freed) return;
  state.freed = true;
  finalized.started++;
  const { fns } = native.get();
  const free = () => native.callAsync(fns.clientFree, [state.ptr]);
  const done = () => finalized.finished++;
  native.callAsync(fns.flush, [state.ptr, state.drainMs]).then(free, free).then(done, done);
});

function idOf(id) {
  if (typeof id === 'bigint') return id;
  if (typeof id === 'number' && Number.isSafeInteger(id)) return BigInt(id);
  throw new TypeError('an endpoint id must be a BigInt (or a safe integer Number)');
}

function timeoutOf(ms, what) {
  if (typeof ms === 'bigint') return ms;
  if (typeof ms === 'number' && Number.isFinite(ms)) return Math.trunc(ms);
  throw new TypeError(`${what} must be a number of milliseconds`);
}

/** A NUL-terminated JSON Buffer: `head` members (raw JSON text Buffers) then the members of `rest`. */
function jsonBuffer(head, rest) {
  const restJson = json.stringify(rest);
  const parts = [Buffer.from('{')];
  head.forEach((h, i) => {
    if (i) parts.push(Buffer.from(', '));
    parts.push(h);
  });
  if (restJson !== '{}') {
    if (head.length) parts.push(Buffer.from(', '));
    parts.push(Buffer.from(restJson.slice(1, -1)));
  }
  parts.push(Buffer.from('}\0'));
  const out = Buffer.concat(parts);
  for (const h of head) h.fill(0);
  return out;
}

/** `"secret_hex": "<hex>"` written straight into a Buffer (no string copy of the secret). */
function secretHexMember(bytes) {
  const prefix = Buffer.from('"secret_hex": "');
  const out = Buffer.alloc(prefix.length + bytes.length * 2 + 1);
  prefix.copy(out);
  const hex = '0123456789abcdef';
  let o = prefix.length;
  for (const b of bytes) {
    out[o++] = hex.charCodeAt(b >> 4);
    out[o++] = hex.charCodeAt(b & 15);
  }
  out[o] = 0x22;
  return out;
}

function estate(detail) {
  return native.errorOf(native.get().ERR('FLAGHOOK_ESTATE'), detail);
}

class Client {
  /**
   * options: the members of flaghook_client_options by their C names
   * ({mode: "async", allow_private: true, retry: {...}}), as
   * flaghook_client_new_json reads them.  result_queue is always on;
   * timers must stay "thread" (nothing here drives flaghook_tick).
   */
  constructor(options = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('client options must be an object');
    const l = native.get();
    const EINVAL = l.ERR('FLAGHOOK_EINVAL');
    if (options.result_queue === false) {
      throw native.errorOf(EINVAL, 'result_queue: this package takes every result from the queue');
    }
    if (options.timers !== undefined && options.timers !== 'thread') {
      throw native.errorOf(EINVAL, 'timers: "tick" needs flaghook_tick, which this package does not drive');
    }
    this._fns = l.fns;
    this._mode = options.mode === 'async' ? 'async' : 'sync';
    // close() delivers for up to shutdown_timeout_ms through a flush, reads
    // the queue, then frees at once: the library queues what its own free
    // ends into a queue that goes with it.
    const sd = options.shutdown_timeout_ms;
    const drainMs = sd === undefined || sd === 0 || sd === 0n ? DEFAULT_SHUTDOWN_MS : sd < 0 ? 0 : sd;
    const opts = { ...options, result_queue: true, shutdown_timeout_ms: -1 };
    const buf = jsonBuffer([], opts);
    const out = [null];
    const err = Buffer.alloc(native.ERROR_BYTES);
    const rc = l.fns.clientNewJson(out, buf, err, err.length);
    buf.fill(0);
    if (rc !== 0) throw native.errorOf(rc, native.cstr(err));
    this._ptr = out[0];
    this._state = { ptr: this._ptr, freed: false, drainMs: timeoutOf(drainMs, 'shutdown_timeout_ms') };
    registry.register(this, this._state, this._state);
    const fd = [0];
    const frc = l.fns.resultsFd(this._ptr, fd);
    if (frc !== 0) {
      const e = this._error(frc);
      this._state.freed = true;
      registry.unregister(this._state);
      l.fns.clientFree(this._ptr);
      throw e;
    }
    this._fd = fd[0];
    this._emitter = new EventEmitter();
    // A once() listener that has run is removed without off().
    this._emitter.on('removeListener', () => this._watch());
    this._poll = null; // the poll handle, while someone wants records
    this._armed = false; // whether it is started
    this._readScheduled = false;
    this._waiters = new Set(); // nextResult() calls and iterators' pending next()
    this._iterators = new Set();
    this._pending = new Set(); // .async calls in flight
    this._syncChain = Promise.resolve(); // SYNC emitAsync calls, one at a time
    this._syncBusy = 0;
    this._closing = false;
    this._closed = false;
    this._closePromise = null;
  }

  /** "sync" or "async". */
  get mode() {
    return this._mode;
  }

  /** True once close() or closeAsync() has been called. */
  get closed() {
    return this._closing;
  }

  // ---- errors and calls ----

  _error(rc, detail) {
    if (!detail && this._ptr && !this._state.freed) {
      const buf = Buffer.alloc(native.ERROR_BYTES);
      this._fns.clientLastError(this._ptr, buf, buf.length);
      detail = native.cstr(buf);
    }
    return native.errorOf(rc, detail);
  }

  _usable() {
    if (this._closing) throw estate('the client is closed');
    return this._ptr;
  }

  /** fn(...args) on a worker thread; the client is not freed before it ends. */
  _async(fn, args) {
    const p = native.callAsync(fn, args);
    const tracked = p.then(
      () => this._pending.delete(tracked),
      () => this._pending.delete(tracked)
    );
    this._pending.add(tracked);
    return p;
  }

  // ---- endpoints ----

  /**
   * Registers an endpoint; returns its id (a BigInt).  options: the members
   * of flaghook_endpoint_options by name: url, secret (a string: its UTF-8
   * bytes; a Buffer: its bytes, sent as "secret_hex"), events
   * (["FLAG_UPDATED", ...]), scope ("environment"|"organisation"),
   * scope_id, standard_secrets, id, ...
   */
  addEndpoint(options) {
    const ptr = this._usable();
    if (options === null || typeof options !== 'object') throw new TypeError('endpoint options must be an object');
    const { secret, ...rest } = options;
    const head = [];
    if (secret !== undefined && secret !== null) {
      if (typeof secret === 'string' && !secret.includes('\0')) {
        native.bytesOf(secret, 'secret');
        head.push(Buffer.from(`"secret": ${JSON.stringify(secret)}`));
      } else {
        // Bytes as they are: the library judges them itself.
        head.push(secretHexMember(native.bytesOf(secret, 'secret')));
      }
    }
    const buf = jsonBuffer(head, rest);
    const out = [0];
    const err = Buffer.alloc(native.ERROR_BYTES);
    let rc;
    try {
      rc = this._fns.endpointAddJson(ptr, out, buf, err, err.length);
    } finally {
      buf.fill(0);
    }
    if (rc !== 0) throw this._error(rc, native.cstr(err));
    return BigInt(out[0]);
  }

  removeEndpoint(id) {
    const rc = this._fns.endpointRemove(this._usable(), idOf(id));
    if (rc !== 0) throw this._error(rc);
  }

  setEndpointEnabled(id, enabled) {
    const rc = this._fns.endpointSetEnabled(this._usable(), idOf(id), enabled ? 1 : 0);
    if (rc !== 0) throw this._error(rc);
  }

  // ---- emitting ----

  /**
   * Emits an event (an object, a JSON string or a Buffer: see render).
   * ASYNC: validates, queues and returns undefined.  SYNC: delivers to
   * every matching endpoint, blocking the JS thread until they have all
   * answered (prefer emitAsync), and returns their result records; when one
   * did not take it, throws FLAGHOOK_EDELIVERY with the records in
   * `.results`.  The records also go to listeners and iterators.
   */
  emit(event) {
    const ptr = this._usable();
    const body = eventBytes(event);
    const err = Buffer.alloc(native.ERROR_BYTES);
    if (this._mode === 'async') {
      const rc = this._fns.emitJson(ptr, native.ptrBytes(body), body.length, err, err.length);
      if (rc !== 0) throw this._error(rc, native.cstr(err));
      return undefined;
    }
    if (this._syncBusy) {
      throw estate('a SYNC emitAsync of this client is still running: await it before emit()');
    }
    const rc = this._fns.emitJson(ptr, native.ptrBytes(body), body.length, err, err.length);
    return this._syncResults(rc, err);
  }

  /** emit() on a worker thread: the JS thread never waits.  SYNC emits of one client run one at a time. */
  emitAsync(event) {
    let ptr;
    let body;
    try {
      ptr = this._usable();
      body = eventBytes(event);
    } catch (e) {
      return Promise.reject(e);
    }
    const err = Buffer.alloc(native.ERROR_BYTES);
    const args = [ptr, native.ptrBytes(body), body.length, err, err.length];
    if (this._mode === 'async') {
      return this._async(this._fns.emitJson, args).then((rc) => {
        if (rc !== 0) throw this._error(rc, native.cstr(err));
        return undefined;
      });
    }
    this._syncBusy++;
    const run = () =>
      this._async(this._fns.emitJson, args).then(
        (rc) => {
          this._syncBusy--;
          return this._syncResults(rc, err);
        },
        (e) => {
          this._syncBusy--;
          this._rearm();
          throw e;
        }
      );
    const p = this._syncChain.then(run, run);
    this._syncChain = p.catch(() => {});
    return p;
  }

  /** After a SYNC emit: its records from the queue, to the caller and (later) to listeners. */
  _syncResults(rc, err) {
    const records = this._state.freed ? [] : this._drainAll();
    this._rearm();
    if (records.length) this._deliverLater(records);
    const results = records.filter((r) => r.kind === 'result');
    if (rc === 0) return results;
    const e = this._error(rc, native.cstr(err));
    if (rc === native.get().ERR('FLAGHOOK_EDELIVERY')) e.results = results;
    throw e;
  }

  /**
   * ASYNC: waits until every accepted delivery has finished, up to
   * timeoutMs; true when they all have, false on the timeout.  Blocks the
   * JS thread: prefer flushAsync.  SYNC: true at once.
   */
  flush(timeoutMs = 10000) {
    const rc = this._fns.flush(this._usable(), timeoutOf(timeoutMs, 'timeoutMs'));
    return this._flushed(rc);
  }

  /** flush() on a worker thread. */
  async flushAsync(timeoutMs = 10000) {
    const ptr = this._usable();
    const rc = await this._async(this._fns.flush, [ptr, timeoutOf(timeoutMs, 'timeoutMs')]);
    return this._flushed(rc);
  }

  _flushed(rc) {
    if (rc === 0) return true;
    if (rc === native.get().ERR('FLAGHOOK_ETIMEOUT')) return false;
    throw this._error(rc);
  }

  // ---- counters ----

  _text(fn) {
    const out = [null];
    const len = [0];
    const rc = fn(this._usable(), out, len);
    if (rc !== 0) {
      if (out[0]) this._fns.free(out[0]);
      throw this._error(rc);
    }
    return native.take(out[0], Number(len[0])).toString('utf8');
  }

  /** {client: {pending, ...}, endpoints: [{id (a BigInt), delivered, ...}]} */
  stats() {
    return json.parse(this._text(this._fns.statsJson), { bigintKeys: ['id', 'endpoint_id'] });
  }

  /** Prometheus text exposition (0.0.4). */
  metrics() {
    return this._text(this._fns.metrics);
  }

  // ---- results ----

  /** The oldest record if one waits, else null.  Never waits. */
  takeResult() {
    return this._next(this._usable());
  }

  _next(ptr) {
    const out = [null];
    const len = [0];
    const rc = this._fns.resultNext(ptr, 0, out, len);
    if (rc !== 0) {
      if (out[0]) this._fns.free(out[0]);
      if (rc === native.get().ERR('FLAGHOOK_ETIMEOUT')) return null;
      throw this._error(rc);
    }
    return json.parse(native.take(out[0], Number(len[0])).toString('utf8'), { bigintKeys: ['endpoint_id'] });
  }

  _drainAll() {
    const records = [];
    for (let r = this._next(this._ptr); r; r = this._next(this._ptr)) records.push(r);
    return records;
  }

  /**
   * The next record the client reads, or null after timeoutMs (default:
   * wait until one comes or the client closes).  Never blocks the JS thread.
   */
  nextResult(timeoutMs) {
    if (this._closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      const w = { resolve, timer: null };
      if (timeoutMs !== undefined && timeoutMs !== null && timeoutMs >= 0) {
        w.timer = setTimeout(() => {
          this._waiters.delete(w);
          this._watch();
          resolve(null);
        }, timeoutMs);
      }
      this._waiters.add(w);
      this._watch();
    });
  }

  /**
   * An async iterator over every record the client reads from now on
   * ({kind: "result"|"disabled"|"log", ...}); it ends when the client is
   * closed, after the records close() read.  Leave the loop (break) to stop it.
   */
  results() {
    const it = { buf: [], waiter: null, done: false };
    this._iterators.add(it);
    const client = this;
    const finish = () => {
      it.done = true;
      client._iterators.delete(it);
      if (it.waiter) {
        client._waiters.delete(it.waiter);
        it.waiter.resolve(null);
        it.waiter = null;
      }
      client._watch();
      return Promise.resolve({ value: undefined, done: true });
    };
    return {
      next() {
        if (it.buf.length) return Promise.resolve({ value: it.buf.shift(), done: false });
        if (it.done || client._closed) return finish();
        if (it.waiter) return Promise.reject(new Error('flaghook: next() called again before the last one settled'));
        return new Promise((resolve) => {
          it.waiter = {
            resolve: (rec) => {
              it.waiter = null;
              resolve(rec ? { value: rec, done: false } : { value: undefined, done: true });
            },
            timer: null,
          };
          client._waiters.add(it.waiter);
          client._watch();
        });
      },
      return: finish,
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  [Symbol.asyncIterator]() {
    return this.results();
  }

  /** Listeners: "record" (every record), "result", "disabled", "log". */
  on(name, listener) {
    this._emitter.on(name, listener);
    this._watch();
    return this;
  }

  once(name, listener) {
    this._emitter.once(name, listener);
    this._watch();
    return this;
  }

  off(name, listener) {
    this._emitter.off(name, listener);
    return this;
  }

  addListener(name, listener) {
    return this.on(name, listener);
  }

  removeListener(name, listener) {
    return this.off(name, listener);
  }

  removeAllListeners(name) {
    if (name === undefined) this._emitter.removeAllListeners();
    else this._emitter.removeAllListeners(name);
    this._watch();
    return this;
  }

  listenerCount(name) {
    return this._emitter.listenerCount(name);
  }

  _demand() {
    if (this._waiters.size) return 'wait';
    for (const n of RECORD_EVENTS) if (this._emitter.listenerCount(n)) return 'listen';
    return null;
  }

  /**
   * Starts, adjusts or stops the watcher.  It exists only while someone
   * wants records: a client nobody listens to holds no poll handle, so
   * nothing keeps it from being collected.  It keeps the process alive only
   * while a nextResult() or an iterator is waiting.
   */
  _watch() {
    const demand = this._closing ? null : this._demand();
    if (!demand) {
      if (this._poll) {
        this._poll.close();
        this._poll = null;
        this._armed = false;
      }
      return;
    }
    if (!this._poll) {
      this._poll = native.koffi.node.poll(this._fd, { readable: true }, () => this._onReadable());
      this._armed = true;
    }
    if (demand === 'wait') this._poll.ref();
    else this._poll.unref();
  }

  _rearm() {
    if (this._poll && !this._armed && !this._closing) {
      this._poll.start({ readable: true }, () => this._onReadable());
      this._armed = true;
    }
  }

  _onReadable() {
    // libuv calls this outside any JS callback scope: stop watching (the
    // descriptor stays readable until the queue is drained) and read in a
    // regular callback, where promise reactions and listener errors behave.
    if (!this._poll || !this._armed) return;
    this._poll.stop();
    this._armed = false;
    if (this._readScheduled) return;
    this._readScheduled = true;
    setImmediate(() => {
      this._readScheduled = false;
      // Nobody wants records any more: leave them queued for whoever comes.
      // A SYNC emit in flight takes its own records and re-arms.
      if (this._closing || !this._demand() || this._syncBusy) return;
      const records = [];
      for (let n = 0; n < DRAIN_BATCH; n++) {
        const r = this._next(this._ptr);
        if (!r) break;
        records.push(r);
      }
      this._rearm();
      this._dispatch(records);
      this._watch();
    });
  }

  _dispatch(records) {
    this._deliver(records);
    this._announce(records);
  }

  _deliverLater(records) {
    setImmediate(() => this._dispatch(records));
  }

  /** To iterators and waiters: never throws. */
  _deliver(records) {
    for (const r of records) {
      for (const it of this._iterators) if (!it.waiter) it.buf.push(r);
      const waiters = [...this._waiters];
      this._waiters.clear();
      for (const w of waiters) {
        if (w.timer) clearTimeout(w.timer);
        w.resolve(r);
      }
    }
  }

  /** To listeners: a listener's own error is thrown, as with any EventEmitter. */
  _announce(records) {
    for (const r of records) {
      this._emitter.emit('record', r);
      if (r.kind === 'result' || r.kind === 'disabled' || r.kind === 'log') this._emitter.emit(r.kind, r);
    }
  }

  // ---- closing ----

  _stopWatching() {
    if (this._poll) {
      this._poll.close();
      this._poll = null;
      this._armed = false;
    }
  }

  _finishClose(records) {
    this._deliver(records);
    this._closed = true;
    for (const w of this._waiters) {
      if (w.timer) clearTimeout(w.timer);
      w.resolve(null);
    }
    this._waiters.clear();
    if (records.length) process.nextTick(() => this._announce(records));
  }

  /**
   * Closes the client: no new calls; ASYNC deliveries get up to
   * shutdown_timeout_ms (default 5000) to finish, blocking the JS thread
   * that long (prefer closeAsync); what is still pending then is
   * abandoned.  Returns the records read at the end, which also go to
   * listeners and iterators.  With Async calls still running, the client
   * closes on worker threads once they end (closeAsync tells when).
   */
  close() {
    if (this._closing) return [];
    this._closing = true;
    this._stopWatching();
    registry.unregister(this._state);
    if (this._pending.size) {
      this._closePromise = this._closeWhenIdle();
      this._closePromise.catch(() => {});
      return [];
    }
    this._fns.flush(this._ptr, this._state.drainMs);
    const records = this._drainAll();
    this._state.freed = true;
    this._fns.clientFree(this._ptr);
    this._finishClose(records);
    return records;
  }

  /** close() on worker threads; resolves to the records read at the end. */
  closeAsync() {
    if (this._closePromise) return this._closePromise;
    if (this._closing) return Promise.resolve([]);
    this._closing = true;
    this._stopWatching();
    registry.unregister(this._state);
    this._closePromise = this._closeWhenIdle();
    return this._closePromise;
  }

  async _closeWhenIdle() {
    while (this._pending.size) await Promise.allSettled([...this._pending]);
    await native.callAsync(this._fns.flush, [this._ptr, this._state.drainMs]);
    const records = this._drainAll();
    this._state.freed = true;
    await native.callAsync(this._fns.clientFree, [this._ptr]);
    this._finishClose(records);
    return records;
  }
}

/** Clients closed by the finalizer: {started, finished} (for tests). */
function finalizerStats() {
  return { ...finalized };
}

module.exports = { Client, finalizerStats };
