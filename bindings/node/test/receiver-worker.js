'use strict';
// The test receiver in a worker thread: it answers while the main thread
// is blocked in a synchronous library call (a SYNC emit, a flush).

const { parentPort, workerData } = require('node:worker_threads');
const { receiver } = require('./receiver');

(async () => {
  const r = await receiver(workerData || {});
  parentPort.on('message', async (m) => {
    if (m === 'requests') {
      parentPort.postMessage({
        type: 'requests',
        requests: r.requests.map((x) => ({ ...x, body: x.body.toString('utf8') })),
      });
    } else if (m === 'close') {
      await r.close();
      parentPort.postMessage({ type: 'closed' });
    }
  });
  parentPort.postMessage({ type: 'ready', url: r.url });
})();
