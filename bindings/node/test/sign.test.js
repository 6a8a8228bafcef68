'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { flaghook, readVectors, hmacHex, vectorsDir } = require('./helpers');

const { sign, verify, standardSign, standardVerify, FlaghookError } = flaghook;

test(`vectors come from ${vectorsDir()}`, () => {
  assert.ok(readVectors('flagsmith-signature.json').cases.length >= 4);
});

test('sign/verify: X-Flagsmith-Signature vectors', () => {
  for (const c of readVectors('flagsmith-signature.json').cases) {
    assert.strictEqual(sign(c.secret, c.body), c.x_flagsmith_signature, c.name);
    assert.strictEqual(sign(Buffer.from(c.secret, 'utf8'), Buffer.from(c.body, 'utf8')), c.x_flagsmith_signature);
    assert.strictEqual(verify(c.secret, c.body, c.x_flagsmith_signature), true, c.name);
    assert.strictEqual(verify(c.secret, c.body, c.x_flagsmith_signature.toUpperCase()), true, 'any case');
    assert.strictEqual(verify(c.secret, c.body + ' ', c.x_flagsmith_signature), false, 'another body');
    const flipped = (c.x_flagsmith_signature[0] === '0' ? '1' : '0') + c.x_flagsmith_signature.slice(1);
    assert.strictEqual(verify(c.secret, c.body, flipped), false, 'another signature');
  }
});

test('sign/verify: HMAC-SHA256 known answers with binary keys (RFC 4231)', () => {
  for (const c of readVectors('hmac-sha256.json').cases) {
    const key = Buffer.from(c.key_hex, 'hex');
    const data = Buffer.from(c.data_hex, 'hex');
    assert.strictEqual(sign(key, data), c.hmac_sha256_hex, c.name);
    assert.strictEqual(verify(key, data, c.hmac_sha256_hex), true, c.name);
  }
});

test('sign: a non-ASCII string secret is its UTF-8 bytes, not its UTF-16 length', () => {
  // The old binding passed secret_len = str.length: 8 code units for the
  // 13 bytes of this secret, so it signed with a truncated key.
  const secret = 'grüße-🔑';
  assert.notStrictEqual(secret.length, Buffer.byteLength(secret));
  const body = '{"a": 1}';
  const want = 'f8ec311d5bb17cbe87d2322d46262f3ad05dcad0907775252e707c038a1a3d6d';
  assert.strictEqual(sign(secret, body), want);
  assert.strictEqual(sign(secret, body), hmacHex(Buffer.from(secret, 'utf8'), body));
  const truncated = Buffer.from(secret, 'utf8').subarray(0, secret.length);
  assert.notStrictEqual(sign(truncated, body), want, 'the truncated key signs other bytes');
  assert.strictEqual(verify(secret, body, want), true);
  assert.strictEqual(verify(truncated, body, want), false);
});

test('sign/verify: refusals never quote the secret', () => {
  assert.throws(
    () => sign('', 'body'),
    (e) => e instanceof FlaghookError && e.codeName === 'FLAGHOOK_ESECRET' && e.code === flaghook.constants.FLAGHOOK_ESECRET
  );
  assert.throws(() => verify('', 'body', 'ab'), (e) => e.codeName === 'FLAGHOOK_ESECRET');
  const secret = 'hunter2-\ud800';
  assert.throws(
    () => sign(secret, 'body'),
    (e) => e instanceof TypeError && !e.message.includes('hunter2')
  );
  assert.throws(() => sign(42, 'body'), TypeError);
  assert.strictEqual(verify('s3cret', 'body', 'not hex at all'), false);
  assert.strictEqual(verify('s3cret', 'body', ''), false);
});

test('standard webhooks: vectors, rotation, timestamp window', () => {
  for (const c of readVectors('standard-webhooks.json').cases) {
    const ts = Number(c.webhook_timestamp);
    assert.strictEqual(standardSign(c.secret, c.webhook_id, ts, c.body), c.webhook_signature);
    assert.strictEqual(standardSign(c.secret, c.webhook_id, BigInt(ts), Buffer.from(c.body)), c.webhook_signature);
    const now = { now: ts + 10 };
    assert.strictEqual(standardVerify(c.secret, c.webhook_id, c.webhook_timestamp, c.webhook_signature, c.body, now), true);
    // One of several secrets (a rotation), one of several signatures.
    const other = 'whsec_' + Buffer.alloc(24, 7).toString('base64');
    const both = `${standardSign(other, c.webhook_id, ts, c.body)} ${c.webhook_signature}`;
    assert.strictEqual(standardVerify([other, c.secret], c.webhook_id, ts, both, c.body, now), true);
    assert.strictEqual(standardVerify([other], c.webhook_id, ts, c.webhook_signature, c.body, now), false);
    // Another body, another id, a stale or future timestamp.
    assert.strictEqual(standardVerify(c.secret, c.webhook_id, ts, c.webhook_signature, c.body + ' ', now), false);
    assert.strictEqual(standardVerify(c.secret, 'msg_other', ts, c.webhook_signature, c.body, now), false);
    assert.strictEqual(standardVerify(c.secret, c.webhook_id, ts, c.webhook_signature, c.body, { now: ts + 301 }), false);
    assert.strictEqual(
      standardVerify(c.secret, c.webhook_id, ts, c.webhook_signature, c.body, { now: ts + 301, tolerance: 400 }),
      true
    );
    assert.strictEqual(standardVerify(c.secret, c.webhook_id, ts, c.webhook_signature, c.body, { now: ts - 301 }), false);
    // The default clock is today's: a 2021 timestamp is outside the window.
    assert.strictEqual(standardVerify(c.secret, c.webhook_id, ts, c.webhook_signature, c.body), false);
  }
  assert.throws(
    () => standardVerify('not-a-whsec-key', 'id', 1, 'v1,abc', 'body', { now: 1 }),
    (e) => e instanceof FlaghookError && e.codeName === 'FLAGHOOK_ESECRET'
  );
  assert.throws(() => standardSign('whsec_AAAA', 'id\0x', 1, 'body'), TypeError);
});
