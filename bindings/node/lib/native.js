'use strict';
// The shared library: found, checked and declared once per process.
//
// Only the layout-free functions are declared (JSON in, JSON out, handles
// and byte buffers): no C struct is copied here.  Strings the library
// allocates come back through `void **` out-parameters, so that the
// pointer survives to be copied and handed to flaghook_free.

const koffi = require('koffi');
const json = require('./json');

const DEFAULT_NAME = 'libflaghook.so.0';
// 0xMMmmpp: the oldest library with the functions declared below.
const MIN_VERSION = 0x000100;
const ERROR_BYTES = 1024;

let lib = null;
let loadedFrom = null;

/** An error from libflaghook: code (negative), codeName, detail. */
class FlaghookError extends Error {
  constructor(code, codeName, detail) {
    super(detail ? `${detail} (${codeName})` : codeName);
    this.name = 'FlaghookError';
    this.code = code;
    this.codeName = codeName;
    this.detail = detail || '';
  }
}

function declare(handle) {
  koffi.opaque('flaghook_client');
  const f = (proto) => handle.func(proto);
  return {
    version: f('const char *flaghook_version(void)'),
    versionNumber: f('uint32_t flaghook_version_number(void)'),
    strerror: f('const char *flaghook_strerror(int code)'),
    constantsJson: f('const char *flaghook_constants_json(void)'),
    free: f('void flaghook_free(void *ptr)'),
    renderJson: f(
      'int flaghook_render_json(_Out_ void **out, _Out_ size_t *out_len, const uint8_t *event_json, ' +
        'size_t event_len, const char *options_json, uint8_t *error, size_t error_size)'
    ),
    sign: f(
      'int flaghook_sign(uint8_t *out, size_t out_size, const uint8_t *secret, size_t secret_len, ' +
        'const uint8_t *body, size_t body_len)'
    ),
    verify: f(
      'int flaghook_verify(const uint8_t *secret, size_t secret_len, const uint8_t *body, size_t body_len, ' +
        'const uint8_t *signature_hex, size_t signature_len)'
    ),
    standardSignatureBytes: f('size_t flaghook_standard_signature_bytes(void)'),
    standardSign: f(
      'int flaghook_standard_sign(uint8_t *out, size_t out_size, const char *secret, const char *msg_id, ' +
        'int64_t timestamp, const uint8_t *body, size_t body_len)'
    ),
    standardVerify: f(
      'int flaghook_standard_verify(const char **secrets, size_t secret_count, const char *msg_id, ' +
        'const char *timestamp, const char *signature_header, const uint8_t *body, size_t body_len, ' +
        'int64_t now_s, int64_t tolerance_s)'
    ),
    clientNewJson: f(
      'int flaghook_client_new_json(_Out_ flaghook_client **out, const uint8_t *options_json, ' +
        'uint8_t *error, size_t error_size)'
    ),
    clientFree: f('void flaghook_client_free(flaghook_client *client)'),
    clientLastError: f('size_t flaghook_client_last_error(flaghook_client *client, uint8_t *buf, size_t buf_size)'),
    endpointAddJson: f(
      'int flaghook_endpoint_add_json(flaghook_client *client, _Out_ uint64_t *out_id, const uint8_t *options_json, ' +
        'uint8_t *error, size_t error_size)'
    ),
    endpointRemove: f('int flaghook_endpoint_remove(flaghook_client *client, uint64_t id)'),
    endpointSetEnabled: f('int flaghook_endpoint_set_enabled(flaghook_client *client, uint64_t id, int enabled)'),
    emitJson: f(
      'int flaghook_emit_json(flaghook_client *client, const uint8_t *event_json, size_t event_len, ' +
        'uint8_t *error, size_t error_size)'
    ),
    flush: f('int flaghook_flush(flaghook_client *client, int64_t timeout_ms)'),
    resultsFd: f('int flaghook_results_fd(flaghook_client *client, _Out_ int *out_fd)'),
    resultNext: f(
      'int flaghook_result_next(flaghook_client *client, int64_t timeout_ms, _Out_ void **out, _Out_ size_t *out_len)'
    ),
    statsJson: f('int flaghook_stats_json(flaghook_client *client, _Out_ void **out, _Out_ size_t *out_len)'),
    metrics: f('int flaghook_metrics(flaghook_client *client, _Out_ void **out, _Out_ size_t *out_len)'),
  };
}

function open(path) {
  if (!koffi.node || typeof koffi.node.poll !== 'function' || !koffi.decode || typeof koffi.decode.string !== 'function') {
    throw new Error(`flaghook: koffi ${koffi.version} lacks node.poll or decode.string; it needs koffi 3.1 or later`);
  }
  let handle;
  try {
    handle = koffi.load(path);
  } catch (e) {
    throw new Error(
      `flaghook: cannot load ${path} (${e.message}); install libflaghook, set FLAGHOOK_LIBRARY ` +
        'to the path of libflaghook.so.0, or call flaghook.load({ library: path })'
    );
  }
  let fns;
  try {
    fns = declare(handle);
  } catch (e) {
    throw new Error(`flaghook: ${path} lacks a function this package needs (${e.message}); it is too old`);
  }
  const have = fns.versionNumber();
  const major = have >> 16;
  if (major !== MIN_VERSION >> 16 || have < MIN_VERSION) {
    throw new Error(
      `flaghook: ${path} is libflaghook ${fns.version()}; this package needs ` +
        `${MIN_VERSION >> 16}.${(MIN_VERSION >> 8) & 0xff}.x or a later ${MIN_VERSION >> 16}.x`
    );
  }
  const constants = Object.freeze(json.parse(fns.constantsJson()));
  const codeNames = new Map();
  for (const [name, value] of Object.entries(constants)) {
    if (/^FLAGHOOK_E[A-Z0-9]+$/.test(name) && typeof value === 'number' && value < 0) codeNames.set(value, name);
  }
  const ERR = (name) => {
    const v = constants[name];
    if (typeof v !== 'number') throw new Error(`flaghook: the library has no constant ${name}`);
    return v;
  };
  return { fns, constants, codeNames, ERR, path };
}

/**
 * Loads the library: options.library, else $FLAGHOOK_LIBRARY, else the
 * system loader's libflaghook.so.0.  Idempotent; a second call naming
 * another file than the one loaded is an error.
 */
function load(options = {}) {
  const want = options.library || process.env.FLAGHOOK_LIBRARY || DEFAULT_NAME;
  if (lib) {
    if (options.library && options.library !== loadedFrom) {
      throw new Error(`flaghook: already loaded from ${loadedFrom}; cannot switch to ${options.library}`);
    }
    return lib;
  }
  lib = open(want);
  loadedFrom = want;
  return lib;
}

function get() {
  return lib || load();
}

function codeName(code) {
  return get().codeNames.get(code) || `FLAGHOOK_E(${code})`;
}

function cstr(buf) {
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}

function errorOf(code, detail) {
  const l = get();
  return new FlaghookError(code, codeName(code), detail || l.fns.strerror(code));
}

/**
 * Copies `len` bytes at `ptr` into a new Buffer and frees the library's copy.
 * The library writes ASCII JSON (and UTF-8 at most), read here as a UTF-8
 * string (koffi.view would leak a little per call); bytes that are not
 * UTF-8 are copied one by one instead, so the copy is always exact.
 */
function take(ptr, len) {
  const l = get();
  try {
    if (!ptr || !len) return Buffer.alloc(0);
    const b = Buffer.from(koffi.decode.string(ptr, len), 'utf8');
    if (b.length === len && !b.includes('\uFFFD')) return b;
    return Buffer.from(koffi.decode(ptr, 'uint8_t', len));
  } finally {
    if (ptr) l.fns.free(ptr);
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The bytes of a Buffer (any typed array) or of a string as UTF-8.  A string
 * with a lone surrogate has no UTF-8 form (Buffer.from would quietly put
 * U+FFFD in its place and so sign other bytes): a TypeError, naming `what`
 * but never the value.
 */
function bytesOf(v, what) {
  if (Buffer.isBuffer(v)) return v;
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (typeof v === 'string') {
    if (LONE_SURROGATE.test(v)) throw new TypeError(`${what} is not valid Unicode (a lone surrogate)`);
    return Buffer.from(v, 'utf8');
  }
  throw new TypeError(`${what} must be a Buffer or a string`);
}

/** Never a zero-length Buffer: koffi may pass NULL for one, and the library
 * refuses NULL even with a length of 0. */
function ptrBytes(b) {
  return b.length ? b : Buffer.alloc(1);
}

/** A NUL-terminated copy of a string or Buffer, for a `const char *`. */
function cbytes(v, what) {
  const b = Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'utf8');
  if (b.indexOf(0) >= 0) throw new TypeError(`${what} must not contain a NUL character`);
  const out = Buffer.allocUnsafe(b.length + 1);
  b.copy(out);
  out[b.length] = 0;
  return out;
}

// koffi refuses an async call past max_async_calls (256, for the whole
// process): calls past this many wait here, in order, instead.
const ASYNC_MAX = 64;
let asyncRunning = 0;
const asyncQueue = [];

function asyncStart(job) {
  asyncRunning++;
  try {
    // The callback holds `args` (and the buffers in it) until the call has
    // ended: the worker thread reads them meanwhile.
    job.fn.async(...job.args, (err, rc) => {
      job.args = null;
      asyncRunning--;
      if (asyncQueue.length) asyncStart(asyncQueue.shift());
      if (err) job.reject(err);
      else job.resolve(rc);
    });
  } catch (e) {
    asyncRunning--;
    if (asyncQueue.length) asyncStart(asyncQueue.shift());
    job.reject(e);
  }
}

/** fn(...args) on a libuv worker thread (koffi's .async); resolves to its return value. */
function callAsync(fn, args) {
  return new Promise((resolve, reject) => {
    const job = { fn, args, resolve, reject };
    if (asyncRunning < ASYNC_MAX) asyncStart(job);
    else asyncQueue.push(job);
  });
}

module.exports = {
  koffi,
  callAsync,
  load,
  get,
  FlaghookError,
  errorOf,
  codeName,
  cstr,
  take,
  cbytes,
  bytesOf,
  ptrBytes,
  ERROR_BYTES,
  DEFAULT_NAME,
  MIN_VERSION,
};
