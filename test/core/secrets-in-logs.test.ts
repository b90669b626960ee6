import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino, type Logger } from 'pino';
import { checkApiExposure, isLoopbackHost } from '../../src/api/auth.js';
import { loadConfig } from '../../src/config/load.js';
import { PipelineError, errorMessage } from '../../src/core/errors.js';
import { REDACTED_PATHS } from '../../src/core/logger.js';
import { PgControl } from '../../src/cdc/pg-control.js';

/** Secrets never in logs or error messages (docs/security.md): each check would catch a leak. */

const SECRET = 'Sup3rSecretPw0rd';

function captured(): { log: Logger; text: () => string } {
  let out = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      out += String(chunk);
      done();
    },
  });
  return { log: pino({ redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, sink), text: () => out };
}

describe('secrets in logs', () => {
  it("the logger censors secrets by name, at the top and one level down, librdkafka's too", () => {
    const { log, text } = captured();
    log.info({ DATABASE_URL: `postgresql://u:${SECRET}@h/db`, API_TOKEN: SECRET }, 'a');
    log.info({ config: { databaseUrl: `postgresql://u:${SECRET}@h/db`, redisUrl: `redis://:${SECRET}@h` } }, 'b');
    log.info({ headers: { authorization: `Bearer ${SECRET}` }, props: { 'sasl.password': SECRET } }, 'c');
    log.info({ config: { PII_KEYS: `k1:${SECRET}`, piiKeys: [{ id: 'k1', secret: SECRET }] } }, 'd');
    assert.ok(!text().includes(SECRET), text());
    assert.match(text(), /\[redacted\]/);
  });

  it('a configuration error shows no password of a URL and no secret', () => {
    const err = (() => {
      try {
        loadConfig({ DATABASE_URL: `postgresql://u:${SECRET}@h/db`, REDIS_URL: 'nope', PII_KEYS: `k1:${SECRET}` });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof PipelineError, 'REDIS_URL=nope is refused');
    assert.ok(!errorMessage(err).includes(SECRET), errorMessage(err));
    const bad = (() => {
      try {
        loadConfig({ DATABASE_URL: `mysql://u:${SECRET}@h/db`, PII_KEYS: `k1:short${SECRET}!,bad` });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(bad instanceof PipelineError);
    assert.ok(!errorMessage(bad).includes(SECRET), errorMessage(bad));
  });

  it("a PostgreSQL connection failure's message holds no password", async () => {
    const url = `postgresql://postgres:${SECRET}@127.0.0.1:1/none`;
    const err = await PgControl.connect(url, 'engage_test').then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err, 'nothing listens on port 1');
    assert.ok(!errorMessage(err).includes(SECRET), errorMessage(err));
    const { log, text } = captured();
    log.error({ err }, 'cannot connect');
    assert.ok(!text().includes(SECRET), text());
  });
});

describe('the API beyond loopback', () => {
  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1'])
      assert.ok(isLoopbackHost(h), h);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', 'api.example.com', '128.0.0.1']) assert.ok(!isLoopbackHost(h), h);
  });

  it('refuses to start beyond loopback without API_TOKEN, saying to set it', () => {
    assert.throws(
      () => checkApiExposure('0.0.0.0', undefined),
      (err: unknown) =>
        err instanceof PipelineError && err.code === 'CONFIG_INVALID' && /set API_TOKEN/.test(err.message),
    );
    checkApiExposure('0.0.0.0', 'a-token-123');
    checkApiExposure('127.0.0.1', undefined);
  });
});
