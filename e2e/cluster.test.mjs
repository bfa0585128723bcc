// The end-to-end suite against two `dashsync serve` instances sharing a fresh Postgres
// database and Redis (tab A on one instance, tab B on the other). Both run with --dev (the
// page signs in with /dev/token) and one --jwt-secret, so either verifies the other's
// tokens. See scenarios.mjs; run with `make test-e2e`.

import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { defineScenarios } from './scenarios.mjs';
import {
  chromiumMissing, requirement, buildServer, Server, tempDir, E2E_DIR,
  havePostgres, haveRedis, createDatabase, dropRedisKeys, PG_ADMIN_URL, REDIS_URL,
} from './harness.mjs';

const skip =
  (await chromiumMissing()) ??
  requirement(havePostgres(), `no Postgres answers at ${PG_ADMIN_URL} (psql)`, 'start it, or set DASHSYNC_E2E_POSTGRES_URL') ??
  requirement(haveRedis(), `no Redis answers at ${REDIS_URL} (redis-cli)`, 'start it, or set DASHSYNC_E2E_REDIS_URL') ??
  false;

let tmp;
let db;
let servers = [];
const prefix = `dashsync-e2e-${process.pid}-${randomBytes(4).toString('hex')}:`;

defineScenarios('cluster', {
  skip,
  async setup() {
    buildServer();
    tmp = tempDir();
    db = createDatabase();
    const secret = randomBytes(32).toString('hex');
    const logDir = join(E2E_DIR, 'test-results', 'cluster');
    mkdirSync(logDir, { recursive: true });
    const args = ['--dev', '--jwt-secret', secret, '--database-url', db.url, '--redis-url', REDIS_URL, '--redis-prefix', prefix];
    servers = ['instance-1', 'instance-2'].map((name) => new Server({ name, dataDir: join(tmp.dir, name), args, logDir }));
    // One after the other: the first applies the migrations.
    for (const s of servers) await s.start();
    return { a: servers[0], b: servers[1] };
  },
  async teardown() {
    await Promise.all(servers.map((s) => s.stop()));
    db?.drop();
    dropRedisKeys(prefix);
    tmp?.remove();
  },
});
