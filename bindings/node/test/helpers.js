'use strict';
// Shared by the tests: the library under test, a loopback receiver that
// checks signatures on its own (node's crypto, not the library), events,
// and children run with a deadline.

const assert = require('node:assert');
const { receiver, hmacHex } = require('./receiver');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { Worker } = require('node:worker_threads');

const PKG = path.resolve(__dirname, '..');
const REPO = path.resolve(PKG, '..', '..');

// The library the tests run against: $FLAGHOOK_LIBRARY (run-tests.sh sets
// it), else the repository's default build.
const LIBRARY = process.env.FLAGHOOK_LIBRARY || path.join(REPO, 'build', 'libflaghook.so.0');
process.env.FLAGHOOK_LIBRARY = LIBRARY;

const flaghook = require(PKG);
flaghook.load({ library: LIBRARY });

const GOLDEN = path.join(REPO, 'tests', 'golden');

function vectorsDir() {
  if (process.env.FLAGHOOK_VECTORS) return process.env.FLAGHOOK_VECTORS;
  const shared = path.resolve(REPO, '..', 'shared', 'vectors');
  if (fs.existsSync(shared)) return shared;
  return path.join(REPO, 'tests', 'vectors');
}

function readVectors(name) {
  return JSON.parse(fs.readFileSync(path.join(vectorsDir(), name), 'utf8'));
}

/** A load on this machine stretches every wait: FLAGHOOK_TEST_SLOW=3 triples them. */
const SLOW = Number(process.env.FLAGHOOK_TEST_SLOW || 1);
const ms = (n) => Math.round(n * SLOW);


/**
 * The receiver in a worker thread, for calls that block the main thread.
 * requests() asks it for what it got so far.
 */
async function workerReceiver(options = {}) {
  const worker = new Worker(path.join(__dirname, 'receiver-worker.js'), { workerData: options });
  const replies = [];
  const waiting = [];
  worker.on('message', (m) => {
    const w = waiting.findIndex((x) => x.type === m.type);
    if (w >= 0) waiting.splice(w, 1)[0].resolve(m);
    else replies.push(m);
  });
  const reply = (type) =>
    new Promise((resolve, reject) => {
      const i = replies.findIndex((x) => x.type === type);
      if (i >= 0) return resolve(replies.splice(i, 1)[0]);
      waiting.push({ type, resolve });
      worker.once('error', reject);
      return undefined;
    });
  const ready = await reply('ready');
  return {
    url: ready.url,
    async requests() {
      worker.postMessage('requests');
      return (await reply('requests')).requests;
    },
    async close() {
      worker.postMessage('close');
      await reply('closed');
      await worker.terminate();
    },
  };
}

function featureState(over = {}) {
  return {
    enabled: true,
    environment: { id: 1, name: 'Production' },
    feature: {
      created_date: '2024-06-01T12:00:00.000000Z',
      default_enabled: false,
      description: null,
      id: 7,
      initial_value: null,
      name: 'dark_mode',
      project: { id: 1, name: 'Web' },
      type: 'STANDARD',
    },
    feature_segment: null,
    feature_state_value: null,
    identity: null,
    identity_identifier: null,
    multivariate_feature_state_values: [],
    ...over,
  };
}

/** A FLAG_UPDATED event for environment `env`, routable (environment_id). */
function flagUpdated(env = 1, over = {}) {
  return {
    event_type: 'FLAG_UPDATED',
    environment_id: env,
    data: {
      changed_by: 'alice@example.com',
      timestamp: '2024-06-01T12:00:00.000000Z',
      new_state: featureState(),
      ...over,
    },
  };
}

/**
 * Runs `node args...` with a deadline; resolves {code, signal, stdout,
 * stderr, timedOut, ms}.  A child still running at the deadline is killed
 * (SIGKILL), so a hang fails the test instead of stalling the suite.
 */
function runNode(args, { env = {}, timeoutMs = ms(60000), cwd = PKG } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, ms: Date.now() - started });
    });
  });
}

/** The last line of a child's stdout that parses as JSON. */
function lastJson(stdout) {
  const lines = stdout.trim().split('\n').reverse();
  for (const l of lines) {
    try {
      return JSON.parse(l);
    } catch (e) {
      // not this one
    }
  }
  return null;
}

function expectChildOk(r, what) {
  assert.ok(
    !r.timedOut && r.code === 0,
    `${what}: ${r.timedOut ? 'killed after its deadline (a hang)' : `exit ${r.code} signal ${r.signal}`}\n` +
      `stdout: ${r.stdout}\nstderr: ${r.stderr}`
  );
}

module.exports = {
  flaghook,
  LIBRARY,
  PKG,
  REPO,
  GOLDEN,
  vectorsDir,
  readVectors,
  ms,
  hmacHex,
  receiver,
  workerReceiver,
  featureState,
  flagUpdated,
  runNode,
  lastJson,
  expectChildOk,
};
