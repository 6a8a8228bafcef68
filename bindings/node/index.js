'use strict';
// flaghook: Flagsmith-compatible webhooks from Node, over libflaghook.
//
// The library is loaded on first use: from load({library}), else
// $FLAGHOOK_LIBRARY, else the system loader's libflaghook.so.0.

const native = require('./lib/native');
const json = require('./lib/json');
const { render, sign, verify, standardSign, standardVerify } = require('./lib/functions');
const { Client } = require('./lib/client');

module.exports = {
  load(options) {
    native.load(options);
    return module.exports;
  },
  render,
  sign,
  verify,
  standardSign,
  standardVerify,
  Client,
  FlaghookError: native.FlaghookError,
  Float: json.Float,
  stringify: json.stringify,
  parse: json.parse,
  /** The loaded library's version ("0.1.0"). */
  version() {
    return native.get().fns.version();
  },
  /** The loaded library's version as 0xMMmmpp. */
  versionNumber() {
    return native.get().fns.versionNumber();
  },
  /** A static description of an error code ("invalid UTF-8"). */
  strerror(code) {
    return native.get().fns.strerror(code);
  },
  /** The path or name the library was loaded from. */
  libraryPath() {
    return native.get().path;
  },
};

/** Every public constant of the loaded library, {FLAGHOOK_EINVAL: -1, ...}. */
Object.defineProperty(module.exports, 'constants', {
  enumerable: true,
  get: () => native.get().constants,
});
