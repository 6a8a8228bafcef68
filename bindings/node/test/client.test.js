'use strict';
const test = require('node:test');
const assert = require('node:assert');
const {
  flaghook,
  receiver,
  workerReceiver,
  flagUpdated,
  hmacHex,
  ms,
} = require('./helpers');

const { Client, FlaghookError, render, standardVerify } = flaghook;

/** Reads `n` records from the client's iterator (rejects after a deadline). */
async function collect(client, n, timeoutMs = ms(20000)) {
  const got = [];
  const deadline = setTimeout(() => {}, timeoutMs);
  try {
    const timer = new Promise((_, reject) =>
      setTimeout(() => reject(new Error(`only ${got.length} of ${n} records`)), timeoutMs).unref()
    );
    const reading = (async () => {
      for await (const r of client.results()) {
        got.push(r);
        if (got.length >= n) break;
      }
    })();
    await Promise.race([reading, timer]);
    return got;
  } finally {
    clearTimeout(deadline);
  }
}

test('SYNC emit on the JS thread: delivered, signed, its result queued before emit returns', async () => {
  const secret = 'sync-secret';
  const recv = await workerReceiver({ secret });
  const client = new Client({ mode: 'sync', allow_private: true });
  try {
    const id = client.addEndpoint({ url: recv.url, secret, scope: 'environment', scope_id: 1 });
    assert.strictEqual(typeof id, 'bigint');
    const event = flagUpdated(1);
    const heard = [];
    client.on('result', (r) => heard.push(r));
    const results = client.emit(event); // blocks this thread; the receiver answers from its worker
    assert.strictEqual(results.length, 1, 'a SYNC emit returns its results');
    const result = results[0];
    assert.strictEqual(result.kind, 'result');
    assert.strictEqual(result.outcome, 'delivered');
    assert.strictEqual(result.status, 200);
    assert.strictEqual(result.endpoint_id, id);
    assert.strictEqual(result.event_type, 'FLAG_UPDATED');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepStrictEqual(heard, results, 'listeners hear the same records');
    const reqs = await recv.requests();
    assert.strictEqual(reqs.length, 1);
    const req = reqs[0];
    assert.strictEqual(req.method, 'POST');
    assert.ok(req.signatureOk, 'X-Flagsmith-Signature verified with node:crypto');
    assert.strictEqual(req.body, render(event).toString(), 'the body is what render() gives');
    assert.strictEqual(req.headers['x-flaghook-event-id'], result.event_id);
    assert.strictEqual(req.signature, flaghook.sign(secret, req.body));
    assert.strictEqual(client.takeResult(), null);
  } finally {
    client.close();
    await recv.close();
  }
});

test('SYNC emit that an endpoint refuses: FLAGHOOK_EDELIVERY, and the result says why', async () => {
  const recv = await receiver({ status: 503 });
  const client = new Client({ mode: 'sync', allow_private: true });
  try {
    const id = client.addEndpoint({ url: recv.url, secret: 'x', scope_id: 1 });
    let err;
    await client.emitAsync(flagUpdated(1)).catch((e) => (err = e));
    assert.ok(err instanceof FlaghookError);
    assert.strictEqual(err.code, flaghook.constants.FLAGHOOK_EDELIVERY);
    assert.strictEqual(err.codeName, 'FLAGHOOK_EDELIVERY');
    assert.ok(err.detail.length > 0, 'a detail from the error buffer');
    assert.strictEqual(err.results.length, 1);
    const r = err.results[0];
    assert.strictEqual(r.endpoint_id, id);
    assert.notStrictEqual(r.outcome, 'delivered');
    assert.strictEqual(r.status, 503);
  } finally {
    await client.closeAsync();
    await recv.close();
  }
});

test('ASYNC emit: every event delivered and signed; results by iterator, listener and nextResult', async () => {
  const secret = 'async-secret';
  const recv = await receiver({ secret });
  const client = new Client({ mode: 'async', allow_private: true });
  try {
    const id = client.addEndpoint({ url: recv.url, secret, events: ['FLAG_UPDATED'], scope_id: 5 });
    const heard = [];
    const listener = (r) => heard.push(r);
    client.on('result', listener);
    const n = 20;
    const reading = collect(client, n);
    for (let i = 0; i < n; i++) await client.emitAsync(flagUpdated(5, { changed_by: `user${i}` }));
    const got = await reading;
    assert.strictEqual(got.length, n);
    for (const r of got) {
      assert.strictEqual(r.kind, 'result');
      assert.strictEqual(r.outcome, 'delivered');
      assert.strictEqual(r.endpoint_id, id);
    }
    assert.strictEqual(new Set(got.map((r) => r.event_id)).size, n, 'one event id per event');
    assert.strictEqual(recv.requests.length, n);
    assert.ok(recv.requests.every((q) => q.signatureOk));
    const ids = new Set(recv.requests.map((q) => q.headers['x-flaghook-event-id']));
    assert.deepStrictEqual(ids, new Set(got.map((r) => r.event_id)));
    // The listener heard the same records.
    await new Promise((resolve) => setImmediate(resolve));
    assert.strictEqual(heard.length, n);
    client.off('result', listener);

    // nextResult: one more event, then nothing (null after the timeout).
    await client.emitAsync(flagUpdated(5));
    const one = await client.nextResult(ms(10000));
    assert.ok(one && one.outcome === 'delivered');
    assert.strictEqual(await client.nextResult(50), null);
    assert.strictEqual(await client.flushAsync(ms(10000)), true);

    const stats = client.stats();
    const ep = stats.endpoints.find((e) => e.id === id);
    assert.ok(ep, JSON.stringify(stats, (k, v) => (typeof v === 'bigint' ? String(v) : v)));
    assert.strictEqual(ep.delivered, n + 1);
    assert.strictEqual(stats.client.pending, 0);
    const metrics = client.metrics();
    assert.match(metrics, new RegExp(`flaghook_deliveries_total\\{endpoint="${id}",outcome="delivered"\\} ${n + 1}\\b`));
    assert.ok(!metrics.includes(secret) && !metrics.includes(recv.url));
  } finally {
    await client.closeAsync();
    await recv.close();
  }
});

test('a thousand emitAsync calls at once: none refused (koffi allows 256 in flight)', async () => {
  const recv = await receiver({});
  const client = new Client({ mode: 'async', allow_private: true });
  try {
    client.addEndpoint({ url: recv.url, scope_id: 1 });
    const n = 1000;
    const settled = await Promise.allSettled(Array.from({ length: n }, () => client.emitAsync(flagUpdated(1))));
    const refused = settled.filter((s) => s.status === 'rejected');
    assert.strictEqual(refused.length, 0, refused.length ? String(refused[0].reason) : '');
    assert.strictEqual(await client.flushAsync(ms(30000)), true);
    assert.strictEqual(recv.requests.length, n);
    let results = 0;
    while (client.takeResult()) results++;
    assert.strictEqual(results, n);
  } finally {
    await client.closeAsync();
    await recv.close();
  }
});

test('flush on the JS thread with a receiver elsewhere; flush timing out says false', async () => {
  const recv = await workerReceiver({ delayMs: 300 });
  const client = new Client({ mode: 'async', allow_private: true });
  try {
    client.addEndpoint({ url: recv.url, scope_id: 1 });
    client.emit(flagUpdated(1));
    assert.strictEqual(client.flush(1), false, 'a 300 ms answer is not there after 1 ms');
    assert.strictEqual(client.flush(ms(10000)), true);
    const r = client.takeResult();
    assert.strictEqual(r.outcome, 'delivered');
  } finally {
    client.close();
    await recv.close();
  }
});

test('secrets: a Buffer secret goes as bytes, a non-ASCII string as UTF-8, both signed right', async () => {
  // Bytes that are no JSON-safe string (DEL, a control character, UTF-8
  // past the BMP): sent as "secret_hex".
  const binary = Buffer.concat([Buffer.from([0x7f, 0x01, 0x09]), Buffer.from('\u{1f511}', 'utf8')]);
  const unicode = 'grüße-🔑';
  const r1 = await receiver({ secret: binary });
  const r2 = await receiver({ secret: Buffer.from(unicode, 'utf8') });
  const client = new Client({ mode: 'async', allow_private: true });
  try {
    client.addEndpoint({ url: r1.url, secret: binary, scope_id: 9 });
    client.addEndpoint({ url: r2.url, secret: unicode, scope_id: 9 });
    await client.emitAsync(flagUpdated(9));
    assert.strictEqual(await client.flushAsync(ms(10000)), true);
    assert.strictEqual(r1.requests.length, 1);
    assert.strictEqual(r2.requests.length, 1);
    assert.ok(r1.requests[0].signatureOk, 'binary secret');
    assert.ok(r2.requests[0].signatureOk, 'UTF-8 secret');
    assert.strictEqual(r2.requests[0].signature, hmacHex(Buffer.from(unicode, 'utf8'), r2.requests[0].body));
  } finally {
    await client.closeAsync();
    await r1.close();
    await r2.close();
  }
});

test('Standard Webhooks headers verify; no secret, no signature header', async () => {
  const whsec = 'whsec_' + Buffer.alloc(32, 0x5a).toString('base64');
  const recv = await receiver({});
  const client = new Client({ mode: 'async', allow_private: true });
  try {
    client.addEndpoint({ url: recv.url, standard_secrets: [whsec], scope_id: 3 });
    await client.emitAsync(flagUpdated(3));
    assert.strictEqual(await client.flushAsync(ms(10000)), true);
    const q = recv.requests[0];
    assert.strictEqual(q.headers['x-flagsmith-signature'], undefined);
    const h = q.headers;
    assert.strictEqual(h['webhook-id'], h['x-flaghook-event-id']);
    const now = Number(h['webhook-timestamp']);
    assert.ok(standardVerify(whsec, h['webhook-id'], h['webhook-timestamp'], h['webhook-signature'], q.body, { now }));
  } finally {
    await client.closeAsync();
    await recv.close();
  }
});

test('endpoints: BigInt ids exact, disable, remove, organisation scope', async () => {
  const recv = await receiver({});
  const client = new Client({ mode: 'async', allow_private: true });
  try {
    const big = 2n ** 63n - 1n;
    const id = client.addEndpoint({ url: recv.url, id: big, scope_id: 4 });
    assert.strictEqual(id, big);
    const org = client.addEndpoint({
      url: recv.url,
      id: 2n ** 62n,
      scope: 'organisation',
      scope_id: 77,
      events: ['AUDIT_LOG_CREATED'],
    });
    assert.strictEqual(org, 2n ** 62n);
    await client.emitAsync(flagUpdated(4));
    const r = await client.nextResult(ms(10000));
    assert.strictEqual(r.endpoint_id, big, 'the record carries the exact id');

    client.setEndpointEnabled(id, false);
    await client.emitAsync(flagUpdated(4));
    client.setEndpointEnabled(id, true);
    assert.strictEqual(await client.flushAsync(ms(10000)), true);
    assert.strictEqual(recv.requests.length, 1, 'nothing went to the disabled endpoint');

    const audit = {
      event_type: 'AUDIT_LOG_CREATED',
      organisation_id: 77,
      data: {
        created_date: '2024-06-01T12:00:00Z',
        log: 'Flag created',
        author: null,
        environment: null,
        project: { id: 1, name: 'Web', organisation: 77 },
        related_object_id: 1,
        related_object_type: 'FEATURE',
      },
    };
    await client.emitAsync(audit);
    const a = await client.nextResult(ms(10000));
    assert.strictEqual(a.endpoint_id, org);
    assert.strictEqual(a.event_type, 'AUDIT_LOG_CREATED');

    client.removeEndpoint(id);
    assert.throws(() => client.removeEndpoint(id), (e) => e.codeName === 'FLAGHOOK_ENOTFOUND');
    assert.throws(() => client.setEndpointEnabled(12345n, true), (e) => e.codeName === 'FLAGHOOK_ENOTFOUND');
    assert.throws(() => client.removeEndpoint(1.5), TypeError);
  } finally {
    await client.closeAsync();
    await recv.close();
  }
});

test('a Buffer secret that is not UTF-8 is refused as flaghook_endpoint_add refuses it', () => {
  const client = new Client({ mode: 'async', allow_private: true });
  try {
    assert.throws(
      () => client.addEndpoint({ url: 'http://127.0.0.1:9/hook', secret: Buffer.from([0x61, 0x80, 0xff]), scope_id: 9 }),
      (e) => e instanceof FlaghookError && e.codeName === 'FLAGHOOK_ESECRET' && /UTF-8/.test(e.message)
    );
  } finally {
    client.close();
  }
});

test(
  'endpoint ids past INT64_MAX read the same everywhere (uint64)',
  async () => {
    const recv = await receiver({});
    const client = new Client({ mode: 'async', allow_private: true });
    try {
      client.addEndpoint({ url: recv.url, id: 2n ** 63n - 1n, scope_id: 4 });
      const next = client.addEndpoint({ url: recv.url, scope_id: 4 }); // the library picks 2^63
      await client.emitAsync(flagUpdated(4));
      assert.strictEqual(await client.flushAsync(ms(10000)), true);
      const ids = [client.takeResult(), client.takeResult()].map((r) => r.endpoint_id);
      assert.ok(ids.includes(next), `records say ${ids}, addEndpoint said ${next}`);
      assert.ok(client.stats().endpoints.some((e) => e.id === next), 'stats');
      assert.match(client.metrics(), new RegExp(`endpoint="${next}"`));
    } finally {
      await client.closeAsync();
      await recv.close();
    }
  }
);

test('errors: codes and names from the library, paths, and never a secret', async () => {
  const secret = 'do-not-print-me';
  assert.throws(
    () => new Client({ mode: 'async', no_such_option: 1 }),
    (e) => e instanceof FlaghookError && e.codeName === 'FLAGHOOK_EINVAL' && /no_such_option/.test(e.message)
  );
  assert.throws(() => new Client({ timers: 'tick' }), (e) => e.codeName === 'FLAGHOOK_EINVAL' && /tick/.test(e.message));
  assert.throws(() => new Client({ mode: 'fast' }), (e) => /mode/.test(e.message) && e.code === flaghook.constants.FLAGHOOK_EINVAL);

  const guarded = new Client({ mode: 'async' }); // no allow_private: loopback is refused
  try {
    assert.throws(
      () => guarded.addEndpoint({ url: 'http://127.0.0.1:9/hook', secret, scope_id: 1 }),
      (e) => e.codeName === 'FLAGHOOK_EREFUSED' && !e.message.includes(secret) && !e.message.includes('127.0.0.1:9')
    );
    assert.throws(
      () => guarded.addEndpoint({ url: 'ftp://example.com/x', secret, scope_id: 1 }),
      (e) => e.codeName === 'FLAGHOOK_EURL' && !e.message.includes(secret)
    );
    assert.throws(
      () => guarded.addEndpoint({ url: 'https://example.com/x', secret: 'a\r\nb', scope_id: 1 }),
      (e) => e.codeName === 'FLAGHOOK_ESECRET' && !e.message.includes('a\r\nb')
    );
    assert.throws(
      () => guarded.addEndpoint({ url: 'https://example.com/x', secret: Buffer.from('a\0b'), scope_id: 1 }),
      (e) => e.codeName === 'FLAGHOOK_ESECRET'
    );
    assert.throws(
      () => guarded.addEndpoint({ url: 'https://example.com/x', secret, events: ['FLAG_EXPLODED'] }),
      (e) => e.codeName === 'FLAGHOOK_EINVAL' && /events\[0\]/.test(e.message) && !e.message.includes(secret)
    );
    const bad = flagUpdated(1);
    bad.data.new_state.feature.id = 'seven';
    await assert.rejects(guarded.emitAsync(bad), (e) => /\$\.data\.new_state\.feature\.id/.test(e.message));
    assert.throws(() => guarded.emit(bad), (e) => /\$\.data\.new_state\.feature\.id/.test(e.message));
  } finally {
    guarded.close();
  }
  // A closed client refuses everything with FLAGHOOK_ESTATE; closing again is harmless.
  assert.strictEqual(guarded.closed, true);
  assert.throws(() => guarded.emit(flagUpdated(1)), (e) => e.codeName === 'FLAGHOOK_ESTATE');
  await assert.rejects(guarded.emitAsync(flagUpdated(1)), (e) => e.codeName === 'FLAGHOOK_ESTATE');
  assert.throws(() => guarded.stats(), (e) => e.codeName === 'FLAGHOOK_ESTATE');
  assert.strictEqual(await guarded.nextResult(10), null);
  guarded.close();
  await guarded.closeAsync();
});

test('close ends iterators and waiters, after handing over what was queued', async () => {
  const recv = await receiver({});
  const client = new Client({ mode: 'async', allow_private: true });
  client.addEndpoint({ url: recv.url, scope_id: 1 });
  await client.emitAsync(flagUpdated(1));
  await client.emitAsync(flagUpdated(1));
  assert.strictEqual(await client.flushAsync(ms(10000)), true);
  // Two records wait in the queue; an iterator started now, then close.
  const it = client.results();
  const waiting = client.nextResult();
  const last = await client.closeAsync();
  assert.strictEqual(last.length, 2, 'closeAsync resolves to the records it read');
  const a = await it.next();
  const b = await it.next();
  const end = await it.next();
  assert.strictEqual(a.value.kind, 'result');
  assert.strictEqual(b.value.kind, 'result');
  assert.strictEqual(end.done, true);
  assert.strictEqual((await waiting).kind, 'result');
  assert.strictEqual(await client.nextResult(), null);
  await recv.close();
});

test('close right after ASYNC emits: the deliveries finish and their results are reported', async () => {
  const recv = await receiver({ delayMs: 100 });
  const client = new Client({ mode: 'async', allow_private: true, shutdown_timeout_ms: ms(10000) });
  client.addEndpoint({ url: recv.url, scope_id: 1 });
  const heard = [];
  client.on('result', (r) => heard.push(r));
  for (let i = 0; i < 5; i++) client.emit(flagUpdated(1));
  const last = await client.closeAsync();
  assert.strictEqual(recv.requests.length, 5);
  await new Promise((resolve) => setImmediate(resolve));
  const delivered = heard.filter((r) => r.outcome === 'delivered').length;
  assert.strictEqual(delivered, 5, `listener heard ${heard.length}, close read ${last.length}`);
  await recv.close();
});

test('close on the JS thread abandons what is not done in shutdown_timeout_ms', async () => {
  const recv = await workerReceiver({ delayMs: 3000 });
  const client = new Client({ mode: 'async', allow_private: true, shutdown_timeout_ms: 200 });
  try {
    client.addEndpoint({ url: recv.url, scope_id: 1 });
    client.emit(flagUpdated(1));
    const t = Date.now();
    client.close();
    assert.ok(Date.now() - t < ms(200) + ms(2000), `close took ${Date.now() - t} ms`);
  } finally {
    await recv.close();
  }
});

test('410 Gone: a result, a "disabled" record and log records, to the matching listeners', async () => {
  const recv = await receiver({ status: 410 });
  const client = new Client({ mode: 'async', allow_private: true, retry: { kind: 'standard' } });
  try {
    const id = client.addEndpoint({ url: recv.url, scope_id: 1 });
    const seen = { record: [], result: [], disabled: [], log: [] };
    for (const k of Object.keys(seen)) client.on(k, (r) => seen[k].push(r));
    await client.emitAsync(flagUpdated(1));
    assert.strictEqual(await client.flushAsync(ms(10000)), true);
    const deadline = Date.now() + ms(10000);
    while (!seen.disabled.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.strictEqual(seen.result.length, 1);
    assert.strictEqual(seen.result[0].outcome, 'gave_up');
    assert.strictEqual(seen.result[0].status, 410);
    assert.deepStrictEqual(seen.disabled, [{ endpoint_id: id, kind: 'disabled', reason: 'gone' }]);
    assert.ok(seen.log.length >= 1 && seen.log.every((r) => typeof r.message === 'string' && r.level));
    assert.ok(!seen.log.some((r) => r.message.includes(recv.url)), 'no URL in a log record');
    assert.strictEqual(seen.record.length, seen.result.length + seen.disabled.length + seen.log.length);
    assert.strictEqual(client.stats().endpoints[0].disabled, true);
  } finally {
    await client.closeAsync();
    await recv.close();
  }
});

test('the results descriptor is readable exactly while a record waits (what the watcher relies on)', async () => {
  const { koffi } = require('../lib/native');
  const recv = await receiver({});
  const client = new Client({ mode: 'async', allow_private: true });
  const seen = async () => {
    let readable = 0;
    const poll = koffi.node.poll(client._fd, { readable: true }, () => readable++);
    await new Promise((resolve) => setTimeout(resolve, 50));
    poll.close();
    return readable > 0;
  };
  try {
    assert.strictEqual(await seen(), false, 'an empty queue is not readable');
    client.addEndpoint({ url: recv.url, scope_id: 1 });
    await client.emitAsync(flagUpdated(1));
    await client.emitAsync(flagUpdated(1));
    assert.strictEqual(await client.flushAsync(ms(10000)), true);
    assert.strictEqual(await seen(), true, 'two records: readable');
    assert.ok(client.takeResult());
    assert.strictEqual(await seen(), true, 'one record: still readable');
    assert.ok(client.takeResult());
    assert.strictEqual(await seen(), false, 'drained: not readable');
    assert.strictEqual(client.takeResult(), null);
  } finally {
    await client.closeAsync();
    await recv.close();
  }
});

test('constants come from the library', () => {
  const c = flaghook.constants;
  assert.strictEqual(c.FLAGHOOK_EINVAL, -1);
  assert.strictEqual(typeof c.FLAGHOOK_EVENT_FLAG_UPDATED, 'number');
  assert.ok(Object.isFrozen(c));
  assert.match(flaghook.version(), /^\d+\.\d+\.\d+/);
  assert.ok(flaghook.versionNumber() >= 0x000100);
  assert.match(flaghook.strerror(c.FLAGHOOK_EUTF8), /UTF-8/);
});
