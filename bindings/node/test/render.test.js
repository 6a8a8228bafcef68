'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { flaghook, GOLDEN, flagUpdated, featureState } = require('./helpers');

const { render, parse, stringify, Float, FlaghookError } = flaghook;

const golden = (name) => fs.readFileSync(path.join(GOLDEN, name));

// Every golden body in the current shape is its own event: the payload is
// what render() takes.  (flag_2020 is the old profile's output, compact the
// compact option's: they get tests of their own below.)
const ROUND_TRIP = fs
  .readdirSync(GOLDEN)
  .filter((f) => f.endsWith('.json') && f !== 'flag_2020.json' && !f.endsWith('_compact.json'));

test('the golden files are there', () => {
  assert.ok(ROUND_TRIP.length >= 8, `only ${ROUND_TRIP.join(', ')}`);
});

for (const name of ROUND_TRIP) {
  test(`render: ${name} byte for byte, from its JSON text and from objects`, () => {
    const want = golden(name);
    // A new version is routed by its environment: the event needs the id
    // (it is not part of the body).
    const routed = want.includes('"NEW_VERSION_PUBLISHED"')
      ? Buffer.concat([Buffer.from('{"environment_id": 1, '), want.subarray(1)])
      : want;
    assert.ok(render(routed).equals(want), 'from a Buffer');
    assert.ok(render(routed.toString('utf8')).equals(want), 'from a string');
    // Through JS objects: parse keeps int64 exact (BigInt) and whole floats
    // as Float, stringify writes them back the same.
    const obj = parse(routed.toString('utf8'), { floats: 'wrap' });
    const got = render(obj);
    assert.strictEqual(got.toString('utf8'), want.toString('utf8'));
  });
}

test('render: compact option gives the compact golden body', () => {
  const got = render(golden('sample_environment.json'), { compact: true });
  assert.ok(got.equals(golden('sample_environment_compact.json')));
});

test('render: the 2020 profile gives the 2020 golden body', () => {
  const state = (enabled) => ({
    enabled,
    id: 10430,
    environment: { id: 23, name: 'Development' },
    feature: {
      created_date: '2020-02-25T22:11:16.355547Z',
      default_enabled: false,
      description: null,
      id: 2411,
      initial_value: 'blue',
      name: 'feature_name',
      project: { id: 12, name: 'Project' },
      type: 'CONFIG',
    },
    feature_segment: null,
    feature_state_value: null,
    identity: null,
    identity_identifier: null,
  });
  const event = {
    event_type: 'FLAG_UPDATED',
    data: {
      changed_by: 'Some User',
      new_state: state(true),
      previous_state: state(false),
      timestamp: '2020-03-07T13:59:07.040000Z',
    },
  };
  assert.strictEqual(render(event, { profile: 'flagsmith_2020' }).toString(), golden('flag_2020.json').toString());
});

test('render: BigInt ids are exact at the ends of int64', () => {
  const max = 2n ** 63n - 1n;
  const min = -(2n ** 63n);
  for (const id of [max, max - 1n, min, min + 1n, 2n ** 53n + 1n, -(2n ** 53n) - 1n]) {
    const ev = flagUpdated(1);
    ev.data.new_state.feature.id = id;
    ev.data.new_state.environment.id = id;
    const body = render(ev).toString();
    assert.ok(body.includes(`"id": ${id}, "initial_value": null, "name": "dark_mode"`), body);
    assert.ok(body.includes(`"environment": {"id": ${id}, `), body);
    // And back: parse gives the same BigInt.
    assert.strictEqual(parse(body).data.new_state.feature.id, id);
  }
  // Routing ids too.
  const ev = flagUpdated(max);
  assert.ok(render(ev).length > 0);
});

test('render: one past int64 is an error naming the JSON path', () => {
  for (const id of [2n ** 63n, -(2n ** 63n) - 1n]) {
    const ev = flagUpdated(1);
    ev.data.new_state.feature.id = id;
    assert.throws(
      () => render(ev),
      (e) => e instanceof FlaghookError && e.code < 0 && /\$\.data\.new_state\.feature\.id/.test(e.message)
    );
  }
});

test('render: a Number that lost its precision is refused, naming the path', () => {
  const ev = flagUpdated(1);
  ev.data.new_state.feature.id = 2 ** 53 + 2;
  assert.throws(() => render(ev), (e) => e instanceof RangeError && /\$\.data\.new_state\.feature\.id/.test(e.message));
  // A safe integer is fine.
  ev.data.new_state.feature.id = Number.MAX_SAFE_INTEGER;
  assert.ok(render(ev).toString().includes(`"id": ${Number.MAX_SAFE_INTEGER}, "initial_value"`));
});

test('render: errors name the JSON path and carry code and codeName', () => {
  const ev = flagUpdated(1);
  delete ev.data.new_state.feature.name;
  let err;
  try {
    render(ev);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof FlaghookError);
  assert.ok(err instanceof Error);
  assert.strictEqual(err.code, flaghook.constants.FLAGHOOK_EEVENT);
  assert.strictEqual(err.codeName, 'FLAGHOOK_EEVENT');
  assert.match(err.message, /\$\.data\.new_state\.feature\.name: is missing/);

  // Invalid UTF-8 in the JSON's bytes: named with its field and byte.
  const bad = Buffer.from(stringify(flagUpdated(1)).replace('"dark_mode"', '"dark_\u00ff"'), 'utf8');
  const at = bad.indexOf(Buffer.from([0xc3, 0xbf]));
  bad[at] = 0xff; // a byte that is never UTF-8
  assert.throws(
    () => render(bad),
    (e) =>
      e.codeName === 'FLAGHOOK_EUTF8' &&
      e.code === flaghook.constants.FLAGHOOK_EUTF8 &&
      /\$\.data\.new_state\.feature\.name: invalid UTF-8 at byte 5/.test(e.message)
  );
  // A lone surrogate has no UTF-8 form: refused before the library, with its path.
  const lone = flagUpdated(1);
  lone.data.new_state.feature.name = 'a\ud800b';
  assert.throws(() => render(lone), (e) => e instanceof TypeError && /\$\.data\.new_state\.feature\.name/.test(e.message));

  // An unknown key, a wrong type, not JSON at all.
  assert.throws(() => render({ ...flagUpdated(1), extra: 1 }), /extra/);
  assert.throws(
    () => render(flagUpdated(1, { new_state: featureState({ enabled: 'yes' }) })),
    /\$\.data\.new_state\.enabled/
  );
  assert.throws(() => render('{"event_type": '), (e) => e instanceof FlaghookError && e.code < 0);
  assert.throws(() => render(42), TypeError);
});

test('render: floats keep their kind; Float makes a whole number a float', () => {
  const ev = flagUpdated(1);
  ev.data.new_state.multivariate_feature_state_values = [
    { id: 1, multivariate_feature_option: { id: 2, value: 'a' }, percentage_allocation: 50 },
    { id: 3, multivariate_feature_option: { id: 4, value: 'b' }, percentage_allocation: new Float(50) },
    { id: 5, multivariate_feature_option: { id: 6, value: 'c' }, percentage_allocation: 0.1 },
  ];
  const body = render(ev).toString();
  assert.ok(body.includes('"percentage_allocation": 50}'), body);
  assert.ok(body.includes('"percentage_allocation": 50.0}'), body);
  assert.ok(body.includes('"percentage_allocation": 0.1}'), body);
});

test('render: non-ASCII and Date values', () => {
  const ev = flagUpdated(1);
  ev.data.changed_by = 'Jürgen 🚀';
  ev.data.timestamp = new Date(Date.UTC(2024, 5, 1, 12, 0, 0, 123));
  const body = render(ev).toString();
  assert.ok(body.includes('"changed_by": "J\\u00fcrgen \\ud83d\\ude80"'), body);
  assert.ok(body.includes('"timestamp": "2024-06-01T12:00:00.123000Z"'), body);
});

test('render: the max_body_bytes option', () => {
  assert.throws(
    () => render(flagUpdated(1), { max_body_bytes: 10 }),
    (e) => e.codeName === 'FLAGHOOK_ETOOBIG'
  );
  assert.ok(render(flagUpdated(1), { maxBodyBytes: 100000 }).length > 10);
  assert.throws(() => render(flagUpdated(1), { profile: 'nope' }), /profile/);
});

test('stringify and parse: exact int64, paths in errors', () => {
  const text = '{"a": 9223372036854775807, "b": -9223372036854775808, "c": 1, "d": 2.5, "e": [1e-05, 50.0]}';
  const v = parse(text, { floats: 'wrap' });
  assert.strictEqual(v.a, 9223372036854775807n);
  assert.strictEqual(v.b, -9223372036854775808n);
  assert.strictEqual(v.c, 1);
  assert.strictEqual(v.d, 2.5);
  assert.ok(v.e[1] instanceof Float);
  assert.strictEqual(stringify(v), '{"a": 9223372036854775807, "b": -9223372036854775808, "c": 1, "d": 2.5, "e": [0.00001, 50.0]}');
  assert.strictEqual(typeof parse('{"id": 1}', { bigintKeys: ['id'] }).id, 'bigint');
  assert.throws(() => stringify({ a: [{ b: NaN }] }), /\$\.a\[0\]\.b/);
  assert.throws(() => stringify({ a: new Map() }), /\$\.a/);
  const cyc = {};
  cyc.self = cyc;
  assert.throws(() => stringify(cyc), /circular/);
  assert.throws(() => parse('{"a": 1,}'), SyntaxError);
  assert.deepStrictEqual(parse('{"__proto__": {"x": 1}}').__proto__, { x: 1 }); // eslint-disable-line no-proto
  assert.strictEqual({}.x, undefined);
});
