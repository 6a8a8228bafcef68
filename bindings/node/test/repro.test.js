'use strict';
// The two failures of the old binding, each in a child process with a
// deadline, so that a regression fails the suite instead of hanging it.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { receiver, runNode, lastJson, expectChildOk, ms } = require('./helpers');

const fixture = (name) => path.join(__dirname, 'fixtures', name);

test('THE NODE HANG: results arrive while the JS thread is in flush, and close returns promptly', async () => {
  const secret = 'hang-secret';
  const recv = await receiver({ secret });
  try {
    const n = 40;
    const r = await runNode([fixture('hang-child.js'), recv.url, String(n), 'drain'], { timeoutMs: ms(60000) });
    expectChildOk(r, 'hang-child drain');
    const out = lastJson(r.stdout);
    assert.ok(out, r.stdout);
    assert.strictEqual(out.flushed, true, `flush timed out: ${r.stdout}`);
    assert.strictEqual(out.results, n, 'the listener got every result once flush returned');
    assert.strictEqual(out.delivered, n);
    assert.ok(out.closeMs < ms(2000), `close took ${out.closeMs} ms`);
    assert.strictEqual(recv.requests.length, n);
    assert.ok(recv.requests.every((q) => q.signatureOk));
  } finally {
    await recv.close();
  }
});

test('THE NODE HANG, flush timing out: close still returns within shutdown_timeout_ms', async () => {
  const recv = await receiver({ delayMs: 5000 });
  try {
    const r = await runNode([fixture('hang-child.js'), recv.url, '5', 'timeout'], { timeoutMs: ms(60000) });
    expectChildOk(r, 'hang-child timeout');
    const out = lastJson(r.stdout);
    assert.ok(out, r.stdout);
    assert.strictEqual(out.flushed, false, 'a 5 s receiver cannot be flushed in 300 ms');
    // shutdown_timeout_ms is 1000: close abandons what is left after that.
    assert.ok(out.closeMs < ms(1000) + ms(3000), `close took ${out.closeMs} ms`);
  } finally {
    await recv.close();
  }
});

test('garbage collection while deliveries are in flight: no crash, every result', async () => {
  const recv = await receiver({ delayMs: 40 });
  try {
    const n = 300;
    const r = await runNode(['--expose-gc', fixture('gc-child.js'), recv.url, String(n)], { timeoutMs: ms(120000) });
    expectChildOk(r, 'gc-child');
    const out = lastJson(r.stdout);
    assert.ok(out, r.stdout);
    assert.strictEqual(out.results, n);
    assert.strictEqual(out.delivered, n);
    assert.strictEqual(out.delivered_by_stats, n);
    assert.ok(out.droppedCollected, 'the dropped client was collected');
    assert.ok(out.started >= 1 && out.finished === out.started, `finalizer frees ${out.started}/${out.finished}`);
    assert.ok(out.rounds >= 2, 'collections ran while deliveries were in flight');
    assert.strictEqual(recv.requests.length, n + 50);
  } finally {
    await recv.close();
  }
});
