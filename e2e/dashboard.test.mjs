// The end-to-end suite against one `dashsync serve --dev` (embedded SQLite): two tabs of
// one user, in headless Chromium. See scenarios.mjs; run with `make test-e2e`.

import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { defineScenarios } from './scenarios.mjs';
import { chromiumMissing, buildServer, Server, tempDir, E2E_DIR } from './harness.mjs';

const skip = (await chromiumMissing()) ?? false;
let tmp;
let server;

defineScenarios('single', {
  skip,
  async setup() {
    buildServer();
    tmp = tempDir();
    const logDir = join(E2E_DIR, 'test-results', 'single');
    mkdirSync(logDir, { recursive: true });
    server = new Server({ name: 'dashsync', dataDir: join(tmp.dir, 'data'), args: ['--dev'], logDir });
    await server.start();
    return { a: server, b: server };
  },
  async teardown() {
    await server?.stop();
    tmp?.remove();
  },
});
