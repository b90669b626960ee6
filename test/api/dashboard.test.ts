import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createLogger } from '../../src/core/logger.js';
import { ensureTopics } from '../../src/kafka/admin.js';
import { startHeartbeat, type HeartbeatHandle } from '../../src/runtime/heartbeat.js';
import { startSinkRunner, type SinkRunner } from '../../src/runtime/sink-runner.js';
import { redisSinkFactory } from '../../src/sinks/redis/index.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  content,
  enriched,
  eventFeed,
  redisClient,
  startTestApi,
  wipePrefix,
  type EventFeed,
  type TestApi,
} from './fixtures.js';
import { waitFor } from './wait.js';

/**
 * The live dashboard in headless Chromium, fed by a real Redis sink runner consuming real Kafka
 * records (its metrics reach the API through its heartbeat). With API_TOKEN set, the page takes
 * the token once from ?token=, then draws throughput, freshness, lag, DLQ and the top-content bar
 * chart. Saves test-output/dashboard.png.
 */

export const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'dashboard-test-token';
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const TITLES = [
  'The Data Engineering Show',
  'Streaming at Scale',
  'Weekly Product Digest',
  'Kafka in Practice',
  'Postgres Internals',
  'Design Systems Monthly',
  'Intro to Observability',
  'The Growth Newsletter',
  'Edge Computing Explained',
  'Analytics Office Hours',
  'Launch Week Recap',
  'Behind the Pipeline',
];

let env: TestEnv;
let api: TestApi;
let url: string;
let runner: SinkRunner | undefined;
let beat: HeartbeatHandle | undefined;
let feed: EventFeed | undefined;
let feeding: { stop(): Promise<void> } | undefined;
let context: BrowserContext | undefined;
let profile: string;

const items = TITLES.map((t, i) => content(t, (['podcast', 'video', 'newsletter'] as const)[i % 3]));

/** `waves` × a skewed mix (item i weighs 12 - i), event times spread over the last 4 minutes, committed now. */
function wave(scale: number) {
  const now = Date.now();
  return items.flatMap((c, i) =>
    Array.from({ length: (TITLES.length - i) * scale }, (_, k) =>
      enriched(c, {
        ts: now - ((k * 7919 + i * 104_729) % 240_000),
        sourceTs: now - (k % 40),
        seconds: 20 + ((k * 37) % 300),
        type: k % 9 === 0 ? 'finish' : k % 4 === 0 ? 'pause' : 'play',
      }),
    ),
  );
}

/**
 * Keeps records flowing (the top item's share of a wave every 500 ms) so the page shows live
 * rates. Only the top item: the items sit on different partitions, which the sink writes each at
 * its own pace, so under load whole waves of item 1 could land before item 0's and overtake it.
 */
function keepFeeding(f: EventFeed): { stop(): Promise<void> } {
  let running = true;
  const top = items[0]?.id;
  const loop = (async () => {
    while (running) {
      await f.send(wave(1).filter((e) => e.content_id === top));
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

before(async () => {
  env = await createTestEnv({ API_TOKEN: TOKEN, API_EXPECTED_COMPONENTS: 'sink-redis' });
  await ensureTopics(env.config);
  runner = await startSinkRunner(env.config, redisSinkFactory, createLogger('error', 'test-dashboard-sink'));
  beat = startHeartbeat(env.config, 'sink-redis', () => runner?.status() ?? {}, 1000);
  api = await startTestApi(env.config);
  feed = await eventFeed(env.config);
  const first = wave(8);
  await feed.send(first);
  await waitFor(
    `the sink to write ${first.length} events`,
    () => api.deps.reader.windowCount(),
    (n) => n >= first.length,
    40_000,
    250,
  );
  feeding = keepFeeding(feed);
  await api.app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}`;
});

after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await feeding?.stop();
  await feed?.close();
  await beat?.stop();
  await runner?.stop();
  await api?.close();
  const redis = await redisClient(env.config);
  await wipePrefix(redis, env.config.REDIS_KEY_PREFIX);
  await redis.close();
  await env.cleanup();
});

async function launch(): Promise<BrowserContext> {
  profile = mkdtempSync(path.join(os.tmpdir(), 'engage-chromium-'));
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 960 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30_000,
  });
}

function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // A 401 from the guarded endpoint is expected before a token is given.
    if (msg.type() === 'error' && !/401/.test(msg.text())) errors.push(`console: ${msg.text()}`);
  });
  return errors;
}

describe('dashboard', () => {
  it(
    'draws live throughput, freshness, lag, DLQ and the top-content chart with a token from ?token=',
    { timeout: 60_000 },
    async (t) => {
      if (!existsSync(CHROMIUM)) {
        t.skip(
          `Chromium not installed (${CHROMIUM}); \`npm test\` installs Debian's chromium through scripts/ensure-deps.mjs`,
        );
        return;
      }
      context = await launch();
      const page = await context.newPage();
      const errors = watchErrors(page);
      await page.goto(`${url}/?token=${TOKEN}`);
      assert.equal(new URL(page.url()).search, '', 'the token is removed from the address bar');

      const bars = page.locator('#top-chart svg g.row');
      await bars.first().waitFor({ state: 'visible', timeout: 20_000 });
      assert.equal(await bars.count(), 10);
      assert.equal(await bars.first().getAttribute('data-content-id'), items[0]?.id);
      const widths = await page
        .locator('#top-chart rect.bar')
        .evaluateAll((rects) => rects.map((r) => Number(r.getAttribute('width'))));
      assert.ok(
        widths.every((w, i) => i === 0 || w <= (widths[i - 1] ?? 0)),
        `bars shrink with rank: ${widths.join(', ')}`,
      );
      assert.ok((widths[0] ?? 0) > (widths[9] ?? 0) * 1.5, 'the chart shows the skew');

      // Later refreshes turn totals into rates (records keep flowing).
      const rate = page.locator('#throughput tbody tr', { hasText: 'sink-redis' }).locator('td').nth(1);
      await waitFor(
        'a sink-redis rate above 0',
        async () => ((await rate.count()) > 0 ? rate.innerText() : '—'),
        (txt) => Number(txt.replace(/,/g, '')) > 0,
        20_000,
        500,
      );
      await page.locator('#freshness tbody tr', { hasText: 'sink-redis' }).waitFor({ timeout: 15_000 });
      const fresh = await page.locator('#freshness tbody tr', { hasText: 'sink-redis' }).innerText();
      assert.match(fresh, /\d+(\.\d)? (ms|s)/, fresh);
      assert.match(fresh, /sink-redis \(≤ 5 s\)/, 'each stage with its promise');
      await page.locator('#lags tbody tr', { hasText: 'consumer lag' }).waitFor({ timeout: 15_000 });
      assert.equal((await page.locator('#dlq-total').innerText()).trim(), '0');
      await waitFor(
        'overall status healthy',
        () => page.locator('#overall').innerText(),
        (s) => s === 'healthy',
        15_000,
        500,
      );
      assert.match(await page.locator('#components').innerText(), /sink-redis: 1 live/);
      assert.equal(await page.locator('#token-banner').isVisible(), false);
      assert.equal(await page.evaluate(() => sessionStorage.getItem('engage.api.token')), TOKEN);

      mkdirSync(path.join(root, 'test-output'), { recursive: true });
      await page.screenshot({ path: path.join(root, 'test-output', 'dashboard.png'), fullPage: true });
      assert.deepEqual(errors, []);
    },
  );

  it('without a token shows the token form, and works once a token is entered', { timeout: 40_000 }, async (t) => {
    if (!context) {
      t.skip('Chromium did not start in the previous test');
      return;
    }
    const page = await context.newPage(); // a new tab: empty sessionStorage
    await page.goto(`${url}/`);
    await page.locator('#token-banner').waitFor({ state: 'visible', timeout: 15_000 });
    assert.equal(await page.locator('#top-chart svg').count(), 0);
    // Metrics are open: the rest of the page still fills in.
    await page.locator('#throughput tbody tr', { hasText: 'sink-redis' }).waitFor({ timeout: 15_000 });
    await page.fill('#token-input', TOKEN);
    await page.click('#token-form button');
    await page.locator('#top-chart svg g.row').first().waitFor({ state: 'visible', timeout: 15_000 });
    assert.equal(await page.locator('#token-banner').isVisible(), false);
    await page.close();
  });
});
