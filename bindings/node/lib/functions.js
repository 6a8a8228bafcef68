'use strict';
// The functions that need no client: render a body, sign and verify it.

const native = require('./native');
const json = require('./json');

/** An event as the bytes of its JSON: an object (BigInt ids allowed), a string or a Buffer. */
function eventBytes(event) {
  if (Buffer.isBuffer(event)) return event;
  if (typeof event === 'string') return native.bytesOf(event, 'event');
  if (event === null || typeof event !== 'object') {
    throw new TypeError('event must be an object, a JSON string or a Buffer');
  }
  return Buffer.from(json.stringify(event), 'utf8');
}

function renderOptions(options) {
  if (options === undefined || options === null) return null;
  if (typeof options !== 'object') throw new TypeError('render options must be an object');
  const o = {};
  for (const [k, v] of Object.entries(options)) {
    o[k === 'maxBodyBytes' ? 'max_body_bytes' : k] = v;
  }
  return json.stringify(o);
}

/**
 * The webhook body for `event` as Flagsmith writes it.  The event is the
 * payload itself, {"event_type": ..., "data": {...}}, plus the routing ids
 * "environment_id" and "organisation_id" where the event needs them.
 * options: {profile: "flagsmith"|"flagsmith_2020"|"bullet_train", compact,
 * max_body_bytes}.  Returns a Buffer.
 */
function render(event, options) {
  const l = native.get();
  const body = eventBytes(event);
  const opts = renderOptions(options);
  const out = [null];
  const outLen = [0];
  const err = Buffer.alloc(native.ERROR_BYTES);
  const rc = l.fns.renderJson(out, outLen, native.ptrBytes(body), body.length, opts, err, err.length);
  if (rc !== 0) {
    if (out[0]) l.fns.free(out[0]);
    throw native.errorOf(rc, native.cstr(err));
  }
  return native.take(out[0], Number(outLen[0]));
}

/** X-Flagsmith-Signature of body: lowercase hex HMAC-SHA256, key = the secret's bytes (a string as UTF-8). */
function sign(secret, body) {
  const l = native.get();
  const key = native.bytesOf(secret, 'secret');
  const data = native.bytesOf(body, 'body');
  const out = Buffer.alloc(65);
  const rc = l.fns.sign(out, out.length, native.ptrBytes(key), key.length, native.ptrBytes(data), data.length);
  if (typeof secret === 'string') key.fill(0); // our own copy
  if (rc !== 0) throw native.errorOf(rc);
  return native.cstr(out);
}

/**
 * Whether `signature` (hex, any case) is body's X-Flagsmith-Signature under
 * secret.  Constant time.  false for a signature that does not match; a
 * FlaghookError for what can never match (an empty secret: ESECRET).
 */
function verify(secret, body, signature) {
  const l = native.get();
  const key = native.bytesOf(secret, 'secret');
  const data = native.bytesOf(body, 'body');
  const sig = native.bytesOf(signature, 'signature');
  const rc = l.fns.verify(
    native.ptrBytes(key),
    key.length,
    native.ptrBytes(data),
    data.length,
    native.ptrBytes(sig),
    sig.length
  );
  if (typeof secret === 'string') key.fill(0);
  if (rc === 0) return true;
  if (rc === l.ERR('FLAGHOOK_EVERIFY')) return false;
  throw native.errorOf(rc);
}

function cstring(v, what) {
  if (typeof v !== 'string') throw new TypeError(`${what} must be a string`);
  if (v.includes('\0')) throw new TypeError(`${what} must not contain a NUL character`);
  native.bytesOf(v, what);
  return v;
}

function int64Of(v, what) {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'string' && /^-?[0-9]+$/.test(v)) return BigInt(v);
  throw new TypeError(`${what} must be an integer (a safe Number, a BigInt or a string of digits)`);
}

/**
 * Standard Webhooks: the webhook-signature value "v1,<base64>" over
 * "msgId.timestamp.body", key = the base64 after "whsec_".
 */
function standardSign(secret, msgId, timestamp, body) {
  const l = native.get();
  const data = native.bytesOf(body, 'body');
  const size = Number(l.fns.standardSignatureBytes());
  const out = Buffer.alloc(size);
  const rc = l.fns.standardSign(
    out,
    size,
    cstring(secret, 'secret'),
    cstring(msgId, 'msgId'),
    int64Of(timestamp, 'timestamp'),
    native.ptrBytes(data),
    data.length
  );
  if (rc !== 0) throw native.errorOf(rc);
  return native.cstr(out);
}

/**
 * Whether a webhook-signature header (one or more "v1,..." entries) signs
 * body under any of `secrets`, with the timestamp within `tolerance` seconds
 * (0 or unset: the specification's 300) of `now` (seconds; default: the
 * clock).  false when nothing matches or the timestamp is out of the window;
 * a FlaghookError for secrets that can never match.
 */
function standardVerify(secrets, msgId, timestamp, signature, body, options = {}) {
  const l = native.get();
  const list = (Array.isArray(secrets) ? secrets : [secrets]).map((s, i) => cstring(s, `secrets[${i}]`));
  const data = native.bytesOf(body, 'body');
  const now = options.now === undefined ? Math.floor(Date.now() / 1000) : int64Of(options.now, 'options.now');
  const tolerance = options.tolerance === undefined ? 0 : int64Of(options.tolerance, 'options.tolerance');
  const rc = l.fns.standardVerify(
    list.length ? list : [null],
    list.length,
    cstring(msgId, 'msgId'),
    cstring(String(timestamp), 'timestamp'),
    cstring(signature, 'signature'),
    native.ptrBytes(data),
    data.length,
    now,
    tolerance
  );
  if (rc === 0) return true;
  if (rc === l.ERR('FLAGHOOK_EVERIFY')) return false;
  throw native.errorOf(rc);
}

module.exports = { render, sign, verify, standardSign, standardVerify, eventBytes };
