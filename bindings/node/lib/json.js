'use strict';
// JSON both ways without losing an int64.
//
// JSON.stringify throws on BigInt and JSON.parse turns 9223372036854775807
// into 9223372036854775808: neither will do for events whose ids cover all
// of int64.  stringify() writes BigInt values exactly and refuses a Number
// that already lost its precision (an integer beyond 2^53) instead of
// sending a neighbouring id; parse() gives back BigInt for every integer a
// Number cannot hold exactly.

/** A number that is sent as a float even when it is whole (50 -> 50.0). */
class Float {
  constructor(value) {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new TypeError('flaghook.Float needs a finite number');
    }
    this.value = value;
  }

  valueOf() {
    return this.value;
  }

  toJSON() {
    return this.value;
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function pathOf(path) {
  return path.length ? '$' + path.join('') : '$';
}

function keyPath(key) {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? '.' + key : '[' + JSON.stringify(key) + ']';
}

function floatText(n) {
  const s = String(n);
  return /[.eE]/.test(s) ? s : s + '.0';
}

/**
 * JSON text of `value`: BigInt exactly, Float as a float literal, the rest as
 * JSON.stringify does (undefined members and toJSON() honoured).  Throws a
 * TypeError or RangeError naming the JSON path of what cannot be written.
 */
function stringify(value) {
  const out = [];
  const seen = new Set();
  const path = [];

  function fail(Kind, what) {
    throw new Kind(`${pathOf(path)}: ${what}`);
  }

  function write(v, key) {
    if (v !== null && typeof v === 'object' && typeof v.toJSON === 'function' && !(v instanceof Float)) {
      v = v.toJSON(key);
    }
    switch (typeof v) {
      case 'string':
        // UTF-8 has no lone surrogate: the library would refuse the JSON
        // without saying where.
        if (LONE_SURROGATE.test(v)) fail(TypeError, 'is not valid Unicode (a lone surrogate)');
        out.push(JSON.stringify(v));
        return;
      case 'boolean':
        out.push(v ? 'true' : 'false');
        return;
      case 'bigint':
        out.push(v.toString());
        return;
      case 'number':
        if (!Number.isFinite(v)) fail(RangeError, `${v} has no JSON form`);
        if (Number.isInteger(v) && !Number.isSafeInteger(v) && Math.abs(v) < 1e21) {
          fail(RangeError, `${v} is beyond 2^53 and may have lost its exact value; pass a BigInt`);
        }
        out.push(Object.is(v, -0) ? '0' : String(v));
        return;
      case 'object':
        break;
      default:
        fail(TypeError, `a ${typeof v} has no JSON form`);
    }
    if (v === null) {
      out.push('null');
      return;
    }
    if (v instanceof Float) {
      out.push(floatText(v.value));
      return;
    }
    if (seen.has(v)) fail(TypeError, 'is a circular reference');
    if (v instanceof Map || v instanceof Set || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
      fail(TypeError, `a ${v.constructor.name} has no JSON form`);
    }
    seen.add(v);
    if (Array.isArray(v)) {
      out.push('[');
      for (let i = 0; i < v.length; i++) {
        if (i) out.push(', ');
        path.push(`[${i}]`);
        const item = v[i];
        if (item === undefined || typeof item === 'function' || typeof item === 'symbol') out.push('null');
        else write(item, String(i));
        path.pop();
      }
      out.push(']');
    } else {
      out.push('{');
      let first = true;
      for (const k of Object.keys(v)) {
        const item = v[k];
        if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
        path.push(keyPath(k));
        if (LONE_SURROGATE.test(k)) fail(TypeError, 'the key is not valid Unicode (a lone surrogate)');
        if (!first) out.push(', ');
        first = false;
        out.push(JSON.stringify(k), ': ');
        write(item, k);
        path.pop();
      }
      out.push('}');
    }
    seen.delete(v);
  }

  if (value === undefined) throw new TypeError('$: undefined has no JSON form');
  write(value, '');
  return out.join('');
}

/**
 * Parses JSON text.  Integers a Number cannot hold exactly come back as
 * BigInt, and so does every integer under a key in options.bigintKeys (ids).
 * options.floats: 'wrap' gives a whole number written as a float (50.0,
 * 1e+16) as a Float, so that stringify() writes it as a float again.
 */
function parse(text, options = {}) {
  const bigintKeys = options.bigintKeys ? new Set(options.bigintKeys) : null;
  const wrapFloats = options.floats === 'wrap';
  let i = 0;

  function fail(what) {
    throw new SyntaxError(`JSON: ${what} at offset ${i}`);
  }

  function ws() {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  }

  function number(key) {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) fail('bad number');
    i += m[0].length;
    if (m[2] === undefined && m[3] === undefined) {
      const n = Number(m[0]);
      if (!Number.isSafeInteger(n) || (bigintKeys && bigintKeys.has(key))) return BigInt(m[0]);
      return n;
    }
    const f = Number(m[0]);
    return wrapFloats && Number.isInteger(f) ? new Float(f) : f;
  }

  function string() {
    // The string's extent, then the language's own decoder for its escapes.
    const start = i;
    i++;
    for (;;) {
      const j = text.indexOf('"', i);
      if (j < 0) fail('unterminated string');
      let k = j - 1;
      while (text.charCodeAt(k) === 0x5c) k--;
      i = j + 1;
      if ((j - 1 - k) % 2 === 0) break;
    }
    return JSON.parse(text.slice(start, i));
  }

  function value(key) {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj = {};
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const k = string();
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        Object.defineProperty(obj, k, { value: value(k), enumerable: true, writable: true, configurable: true });
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const arr = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(key));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    if (c === '-' || (c >= '0' && c <= '9')) return number(key);
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    return fail('unexpected character');
  }

  if (typeof text !== 'string') text = String(text);
  const v = value('');
  ws();
  if (i !== text.length) fail('trailing characters');
  return v;
}

module.exports = { Float, stringify, parse };
