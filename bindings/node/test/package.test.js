'use strict';
// What npm pack would ship, and the README example's size.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { PKG } = require('./helpers');

function npmPack() {
  try {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: PKG,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, npm_config_update_notifier: 'false' },
    });
    return JSON.parse(out)[0];
  } catch (e) {
    return null;
  }
}

test('npm pack ships the package and nothing else', (t) => {
  const pack = npmPack();
  if (!pack) {
    t.skip('npm is not available');
    return;
  }
  const files = pack.files.map((f) => f.path).sort();
  for (const want of [
    'LICENSE',
    'README.md',
    'example.js',
    'index.d.ts',
    'index.js',
    'install.js',
    'lib/client.js',
    'lib/functions.js',
    'lib/json.js',
    'lib/native.js',
    'package.json',
  ]) {
    assert.ok(files.includes(want), `${want} missing from ${files.join(', ')}`);
  }
  for (const f of files) {
    assert.ok(!/^(test|node_modules)\/|\.tgz$|^run-tests\.sh$/.test(f), `${f} should not ship`);
  }
  assert.strictEqual(pack.name, 'flaghook');
});

test('package.json: CommonJS entry, Node 18, koffi from the registry', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(PKG, 'package.json'), 'utf8'));
  assert.strictEqual(pkg.name, 'flaghook');
  assert.strictEqual(pkg.main, 'index.js');
  assert.notStrictEqual(pkg.type, 'module');
  assert.strictEqual(pkg.engines.node, '>=18');
  assert.match(pkg.dependencies.koffi, /^\^3\./);
  assert.deepStrictEqual(Object.keys(pkg.dependencies), ['koffi']);
  const lock = JSON.parse(fs.readFileSync(path.join(PKG, 'package-lock.json'), 'utf8'));
  assert.ok(lock.packages['node_modules/koffi'], 'the lockfile pins koffi for npm ci');
});

test('the README example (example.js) fits in 30 lines', () => {
  const lines = fs.readFileSync(path.join(PKG, 'example.js'), 'utf8').trimEnd().split('\n');
  assert.ok(lines.length <= 30, `${lines.length} lines`);
});
