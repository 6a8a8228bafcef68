'use strict';
// example.js (the README's Node example) against a loopback receiver; or,
// with FLAGHOOK_NODE_EXAMPLE, the copy make check extracts from README.md.
const EXAMPLE = process.env.FLAGHOOK_NODE_EXAMPLE;
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { receiver, runNode, expectChildOk, PKG, LIBRARY, ms } = require('./helpers');

test('example.js delivers one signed FLAG_UPDATED and prints the result', async () => {
  const secret = 'example-secret';
  const recv = await receiver({ secret });
  try {
    const r = await runNode([EXAMPLE || path.join(PKG, 'example.js')], {
      env: { WEBHOOK_URL: recv.url, FLAGHOOK_SECRET: secret, FLAGHOOK_LIBRARY: LIBRARY },
      timeoutMs: ms(30000),
    });
    expectChildOk(r, 'example.js');
    assert.match(r.stdout, /outcome: 'delivered'/);
    assert.match(r.stdout, /status: 200/);
    assert.strictEqual(recv.requests.length, 1);
    const q = recv.requests[0];
    assert.ok(q.signatureOk, 'signed with FLAGHOOK_SECRET');
    const body = JSON.parse(q.body.toString());
    assert.strictEqual(body.event_type, 'FLAG_UPDATED');
    assert.strictEqual(body.data.new_state.feature.name, 'dark_mode');
    assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret));
  } finally {
    await recv.close();
  }
});

test('example.js fails with a message when the receiver refuses', async () => {
  const recv = await receiver({ status: 500 });
  try {
    const r = await runNode([EXAMPLE || path.join(PKG, 'example.js')], {
      env: { WEBHOOK_URL: recv.url, FLAGHOOK_SECRET: 'x', FLAGHOOK_LIBRARY: LIBRARY },
      timeoutMs: ms(30000),
    });
    assert.strictEqual(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /^webhook: .*FLAGHOOK_EDELIVERY/m);
    assert.match(r.stdout, /status: 500/);
  } finally {
    await recv.close();
  }
});
