import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { PipelineError } from '../../src/core/errors.js';
import {
  Pseudonymiser,
  configuredPseudonymiser,
  isPseudonym,
  pseudonym,
  pseudonymKeyId,
} from '../../src/core/pseudonym.js';
import { RowJson } from '../../src/cdc/row-json.js';
import { OID } from '../../src/cdc/render.js';

/** Keyed pseudonyms (docs/security.md): deterministic, naming their key, rotatable, never hashed twice. */

const K1 = { id: 'k1', secret: 'a'.repeat(43) };
const K2 = { id: 'k2', secret: 'b'.repeat(43) };
const USER_ID = { table: 'engagement_events', column: 'user_id' };

describe('pseudonym', () => {
  it('is <keyid>.<base64url of the first 16 bytes of HMAC-SHA-256(secret, value)>', () => {
    const v = '3f2b8c1e-5a4d-4e8f-9b7a-1c2d3e4f5a6b';
    const mac = createHmac('sha256', K1.secret).update(v).digest().subarray(0, 16).toString('base64url');
    assert.equal(pseudonym(K1, v), `k1.${mac}`);
    assert.equal(pseudonym(K1, v).length, 'k1.'.length + 22);
  });

  it('is deterministic per key, distinct across keys and values', () => {
    const a = randomUUID();
    const b = randomUUID();
    assert.equal(pseudonym(K1, a), pseudonym(K1, a));
    assert.notEqual(pseudonym(K1, a), pseudonym(K1, b));
    assert.notEqual(pseudonym(K1, a).slice(3), pseudonym(K2, a).slice(3));
    assert.equal(pseudonymKeyId(pseudonym(K2, a)), 'k2');
  });

  it('isPseudonym tells a pseudonym from a UUID, its 32-hex form, an integer or a timestamp', () => {
    assert.ok(isPseudonym(pseudonym(K1, 'x')));
    const u = randomUUID();
    for (const raw of [u, u.replaceAll('-', ''), '123456789', '2025-08-01T10:00:00.000000Z', 'k1.short'])
      assert.equal(isPseudonym(raw), false, raw);
  });
});

describe('Pseudonymiser', () => {
  it('protects the tagged columns of a table only; null stays null', () => {
    const p = new Pseudonymiser([USER_ID], [K1]);
    assert.equal(p.columns('content', ['id', 'title']), undefined);
    assert.deepEqual([...(p.columns('public.engagement_events', ['id', 'user_id']) ?? new Map()).keys()], ['user_id']);
    const u = randomUUID();
    const row: Record<string, unknown> = { id: '1', user_id: u, device: 'web' };
    p.protectRow('engagement_events', row);
    assert.deepEqual(row, { id: '1', user_id: pseudonym(K1, u), device: 'web' });
    const empty: Record<string, unknown> = { id: '2', user_id: null };
    p.protectRow('engagement_events', empty);
    assert.equal(empty.user_id, null);
  });

  it("never hashes a listed key's pseudonym twice; the first key makes new ones (rotation)", () => {
    const u = randomUUID();
    const old = pseudonym(K1, u);
    const rotated = new Pseudonymiser([USER_ID], [K2, K1]);
    assert.equal(rotated.protect(old), old, 'a k1 pseudonym passes when k1 is still listed');
    assert.equal(rotated.protect(u), pseudonym(K2, u), 'new values get the current key');
    assert.equal(rotated.protect(rotated.protect(u)), pseudonym(K2, u));
    const k2Only = new Pseudonymiser([USER_ID], [K2]);
    assert.equal(k2Only.protect(old), pseudonym(K2, old), "an unlisted key's pseudonym is just a value");
  });

  it('reports a tagged column the table lacks once, and renders without it', () => {
    const missing: string[] = [];
    const p = new Pseudonymiser([{ table: 'content', column: 'email' }, USER_ID], [K1], (f) =>
      missing.push(`${f.table}.${f.column}`),
    );
    assert.equal(p.columns('content', ['id', 'title']), undefined);
    assert.equal(p.columns('content', ['id', 'title']), undefined);
    assert.deepEqual(missing, ['content.email']);
  });

  it('refuses a tagged field without a key, naming both ways out', () => {
    assert.throws(
      () => configuredPseudonymiser({ piiFields: [USER_ID], piiKeys: [] }, 'engage cdc'),
      (err: unknown) =>
        err instanceof PipelineError &&
        err.code === 'CONFIG_INVALID' &&
        /PII_KEYS=/.test(err.message) &&
        /engage pii new-key/.test(err.message) &&
        /PII_FIELDS=none/.test(err.message),
    );
    assert.equal(configuredPseudonymiser({ piiFields: [], piiKeys: [] }, 'engage cdc').active, false);
  });
});

describe('RowJson with a tagged column', () => {
  const columns = [
    { name: 'id', typeOid: OID.int8 },
    { name: 'user_id', typeOid: OID.uuid },
    { name: 'device', typeOid: 25 },
  ];
  const p = new Pseudonymiser([USER_ID], [K1]);
  const u = randomUUID();

  it('renders the pseudonym in the row, the key-only before image and the key', () => {
    const json = new RowJson(columns, ['id', 'user_id'], p.columns('engagement_events', ['id', 'user_id', 'device']));
    const row = json.row(['7', u, 'web']);
    assert.deepEqual(JSON.parse(row), { id: '7', user_id: pseudonym(K1, u), device: 'web' });
    assert.deepEqual(JSON.parse(json.key(['7', u, 'web']) ?? 'null'), { id: '7', user_id: pseudonym(K1, u) });
    assert.deepEqual(JSON.parse(json.keyOnlyRow(['7', u, undefined])), {
      id: '7',
      user_id: pseudonym(K1, u),
      device: null,
    });
    assert.ok(!row.includes(u));
    assert.deepEqual(JSON.parse(json.row(['8', null, 'ios'])), { id: '8', user_id: null, device: 'ios' });
  });

  it('renders exactly as before for a table without a tagged column', () => {
    const plain = new RowJson(columns, ['id']);
    const none = new RowJson(columns, ['id'], p.columns('content', ['id']));
    assert.equal(none.row(['7', u, 'web']), plain.row(['7', u, 'web']));
    assert.equal(plain.row(['7', u, 'web']), JSON.stringify({ id: '7', user_id: u, device: 'web' }));
  });

  it('costs a few microseconds per new value and less per repeated one (figures for docs/security.md)', () => {
    const values = Array.from({ length: 20_000 }, () => randomUUID());
    const fresh = new Pseudonymiser([USER_ID], [K1]);
    let t = process.hrtime.bigint();
    for (const v of values) fresh.protect(v);
    const newUs = Number(process.hrtime.bigint() - t) / 1e3 / values.length;
    t = process.hrtime.bigint();
    for (const v of values) fresh.protect(v);
    const cachedUs = Number(process.hrtime.bigint() - t) / 1e3 / values.length;
    console.log(`pseudonym: ${newUs.toFixed(2)} µs per new value, ${cachedUs.toFixed(2)} µs per repeated one`);
    assert.ok(cachedUs < newUs);
  });
});
