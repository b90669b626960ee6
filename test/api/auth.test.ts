import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { isOpenPath } from '../../src/api/auth.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { startTestApi, type TestApi } from './fixtures.js';

/** The optional bearer token: data endpoints need it; health, metrics, dashboard shell and docs do not. */

const TOKEN = 's3cret-token-for-tests';
let env: TestEnv;
let api: TestApi;

before(async () => {
  env = await createTestEnv({ API_TOKEN: TOKEN });
  api = await startTestApi(env.config);
});

after(async () => {
  await api.close();
  await env.cleanup();
});

const get = (url: string, authorization?: string) =>
  api.app.inject({ url, headers: authorization === undefined ? {} : { authorization } });

describe('API_TOKEN', () => {
  for (const url of ['/top-content', `/content/${randomUUID()}/stats`, `/content/${randomUUID()}/recent`]) {
    it(`${url.replace(/[0-9a-f-]{36}/, ':id')}: 401 without a token, explaining how to send it`, async () => {
      const res = await get(url);
      assert.equal(res.statusCode, 401);
      assert.equal(res.headers['www-authenticate'], 'Bearer realm="engage"');
      assert.equal(res.json().code, 'UNAUTHORIZED');
      assert.match(res.json().message, /Authorization: Bearer <API_TOKEN>/);
    });
  }

  it('401 for a wrong token or another scheme; the request runs with the right one', async () => {
    const wrong = await get('/top-content', 'Bearer not-the-token');
    assert.equal(wrong.statusCode, 401);
    assert.match(wrong.json().message, /not valid/);
    assert.match(String(wrong.headers['www-authenticate']), /invalid_token/);
    assert.equal((await get('/top-content', `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`)).statusCode, 401);
    const ok = await get('/top-content', `Bearer ${TOKEN}`);
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(ok.json().items, []);
    const notFound = await get(`/content/${randomUUID()}/stats`, `bearer ${TOKEN}`);
    assert.equal(notFound.statusCode, 404);
  });

  it('checks the token before validating parameters (no information without it)', async () => {
    assert.equal((await get('/content/not-a-uuid/stats')).statusCode, 401);
    assert.equal((await get('/content/not-a-uuid/stats', `Bearer ${TOKEN}`)).statusCode, 400);
  });

  it('leaves health, metrics, the dashboard shell and the docs open', async () => {
    for (const url of [
      '/health/live',
      '/metrics',
      '/metrics/prometheus',
      '/',
      '/dashboard/app.js',
      '/dashboard/style.css',
      '/docs',
      '/docs/json',
    ]) {
      const res = await get(url);
      assert.notEqual(res.statusCode, 401, url);
      assert.ok(res.statusCode < 400, `${url}: ${res.statusCode}`);
    }
    // /health answers 503 here (no stage runs) but is not guarded.
    assert.notEqual((await get('/health')).statusCode, 401);
    assert.notEqual((await get('/health/ready')).statusCode, 401);
  });

  it('matches open paths exactly, not by prefix', () => {
    assert.equal(isOpenPath('/health'), true);
    assert.equal(isOpenPath('/metrics?x=1'), true);
    assert.equal(isOpenPath('/'), true);
    assert.equal(isOpenPath('/healthz-data'), false);
    assert.equal(isOpenPath('/metricsX'), false);
    assert.equal(isOpenPath('/top-content'), false);
    assert.equal(isOpenPath('/content/x/stats'), false);
  });
});
