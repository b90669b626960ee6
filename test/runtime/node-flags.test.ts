import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SEMI_SPACE_DEFAULT_MB, stageNodeFlags as flags } from '../../bin/node-flags.mjs';
import { loadConfig } from '../../src/config/load.js';

test('the wrapper gives `engage process` and `engage sink` the young generation of the config defaults', () => {
  const config = loadConfig({}, '/nonexistent');
  assert.equal(SEMI_SPACE_DEFAULT_MB, config.PROCESSOR_SEMI_SPACE_MB, 'the wrapper default must be the schema default');
  assert.equal(SEMI_SPACE_DEFAULT_MB, config.SINK_SEMI_SPACE_MB, 'the wrapper default must be the schema default');
  assert.deepEqual(flags('process', {}), [`--max-semi-space-size=${config.PROCESSOR_SEMI_SPACE_MB}`]);
  assert.deepEqual(flags('sink', {}), [`--max-semi-space-size=${config.SINK_SEMI_SPACE_MB}`]);
});

test('each stage reads its own variable; 0 means V8 default; NODE_OPTIONS that set the flag win', () => {
  assert.deepEqual(flags('process', { PROCESSOR_SEMI_SPACE_MB: '128', SINK_SEMI_SPACE_MB: '0' }), [
    '--max-semi-space-size=128',
  ]);
  assert.deepEqual(flags('sink', { PROCESSOR_SEMI_SPACE_MB: '128', SINK_SEMI_SPACE_MB: '0' }), []);
  assert.deepEqual(flags('sink', { SINK_SEMI_SPACE_MB: ' 32 ' }), ['--max-semi-space-size=32']);
  assert.deepEqual(flags('sink', { NODE_OPTIONS: '--max-semi-space-size=16 --trace-gc' }), []);
  assert.deepEqual(flags('sink', { NODE_OPTIONS: '--trace-gc' }), ['--max-semi-space-size=64']);
});

test('other commands, and values the config check will refuse, get no flag', () => {
  for (const command of ['cdc', 'api', 'run', 'generate', 'stack', 'constructor', undefined])
    assert.deepEqual(flags(command, {}), [], String(command));
  for (const bad of ['abc', '-1', '1.5', '']) assert.deepEqual(flags('sink', { SINK_SEMI_SPACE_MB: bad }), [], bad);
});
