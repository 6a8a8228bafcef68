// example.js: tell environment 1's webhook that dark_mode was switched on.
const flaghook = require('flaghook');

const url = process.env.WEBHOOK_URL || 'http://127.0.0.1:8000/hook';
const now = new Date().toISOString();
const state = {
  enabled: true, environment: { id: 1, name: 'Production' }, feature_state_value: null,
  feature: { id: 7, name: 'dark_mode', type: 'STANDARD', created_date: now, default_enabled: false,
             description: null, initial_value: null, project: { id: 1, name: 'Web' } },
  feature_segment: null, identity: null, identity_identifier: null, multivariate_feature_state_values: [],
};

async function main() {
  // SYNC: emit returns once the endpoint has answered.  Loopback and private
  // addresses are refused unless allowed: here for a receiver on 127.0.0.1.
  const client = new flaghook.Client({ mode: 'sync', allow_private: new URL(url).hostname === '127.0.0.1' });
  try {
    client.addEndpoint({ url, secret: process.env.FLAGHOOK_SECRET, scope: 'environment', scope_id: 1 });
    const event = { event_type: 'FLAG_UPDATED', environment_id: 1,
                    data: { changed_by: 'alice@example.com', new_state: state, timestamp: now } };
    const results = await client.emitAsync(event); // on a worker thread: this one never waits
    console.log(results[0]); // { outcome: 'delivered', status: 200, attempts: 1, ... }
  } catch (e) {
    if (e.results) console.log(e.results[0]); // FLAGHOOK_EDELIVERY: what the endpoint said
    throw e;
  } finally {
    await client.closeAsync();
  }
}
main().catch((e) => { console.error(`webhook: ${e.message}`); process.exitCode = 1; });
