import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { inLargeChunks } from '../../src/backfill/copy-reader.js';

/**
 * The regrouping of COPY's output before it is written to the page's file: the same bytes in the
 * same order, in chunks of at least the given size but the last. (What a whole page's file holds
 * is checked against the row reader in backfill-direct.test.ts.)
 */

async function regroup(chunks: Buffer[], minBytes: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of inLargeChunks(
    (async function* () {
      yield* chunks;
    })(),
    minBytes,
  ))
    out.push(c);
  return out;
}

describe('inLargeChunks', () => {
  it('passes every byte on in order, in chunks of at least minBytes but the last', async () => {
    const sizes = Array.from({ length: 500 }, (_, i) => 1 + ((i * 7919) % 3000));
    const chunks = sizes.map((n) => randomBytes(n));
    const out = await regroup(chunks, 64 * 1024);
    assert.ok(out.length > 5, `several chunks out (${out.length})`);
    assert.deepEqual(Buffer.concat(out), Buffer.concat(chunks));
    for (const c of out.slice(0, -1)) assert.ok(c.length >= 64 * 1024, `a chunk of ${c.length} bytes before the last`);
    assert.ok((out.at(-1)?.length ?? 0) > 0, 'no empty chunk at the end');
  });

  it('yields nothing for nothing, and one chunk for less than minBytes', async () => {
    assert.deepEqual(await regroup([], 10), []);
    const out = await regroup([Buffer.from('ab'), Buffer.from('c')], 10);
    assert.deepEqual(out.map(String), ['abc']);
  });

  it('a chunk exactly minBytes long is passed on at once', async () => {
    const out = await regroup([Buffer.from('abcd'), Buffer.from('ef'), Buffer.from('gh'), Buffer.from('i')], 4);
    assert.deepEqual(out.map(String), ['abcd', 'efgh', 'i']);
  });
});
