import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { startTestApi, type TestApi } from './fixtures.js';

/** The OpenAPI document at /docs/json and the Swagger UI at /docs (bundled assets, no network). */

let env: TestEnv;
let api: TestApi;

before(async () => {
  env = await createTestEnv();
  api = await startTestApi(env.config);
});

after(async () => {
  await api.close();
  await env.cleanup();
});

describe('/docs', () => {
  it('documents every endpoint with its parameters and what they accept', async () => {
    const res = await api.app.inject({ url: '/docs/json' });
    assert.equal(res.statusCode, 200);
    const doc = res.json();
    assert.equal(doc.openapi, '3.0.3');
    assert.deepEqual(Object.keys(doc.paths).sort(), [
      '/content/{id}/recent',
      '/content/{id}/stats',
      '/health',
      '/health/live',
      '/health/ready',
      '/metrics',
      '/metrics/history',
      '/metrics/prometheus',
      '/top-content',
    ]);
    const top = doc.paths['/top-content'].get;
    const params = Object.fromEntries(
      top.parameters.map((p: { name: string; description: string; in: string }) => [p.name, p]),
    );
    assert.deepEqual(Object.keys(params).sort(), ['by', 'limit', 'window']);
    assert.match(params.limit.description, /accepts a whole number from 1 to 100/);
    assert.deepEqual(top.security, [{ bearerAuth: [] }]);
    assert.ok(top.responses['400'] && top.responses['401'], 'documents 400 and 401');
    const stats = doc.paths['/content/{id}/stats'].get;
    assert.equal(stats.parameters.find((p: { name: string }) => p.name === 'id').in, 'path');
    assert.ok(stats.responses['404'], 'documents 404');
    assert.equal(doc.components.securitySchemes.bearerAuth.scheme, 'bearer');
    assert.ok(doc.paths['/health'].get.responses['503'], 'documents 503');
  });

  it('serves a browsable page and its bundled assets', async () => {
    const page = await api.app.inject({ url: '/docs' });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /Swagger UI/);
    const css = await api.app.inject({ url: '/docs/static/swagger-ui.css' });
    assert.equal(css.statusCode, 200);
    assert.ok(css.body.length > 1000);
    const init = await api.app.inject({ url: '/docs/static/swagger-initializer.js' });
    assert.equal(init.statusCode, 200);
    assert.match(init.body, /docs\/json|\.\/json/);
  });
});
