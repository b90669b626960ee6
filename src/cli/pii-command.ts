import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';

/**
 * `engage pii new-key [id]`: prints a new pseudonym key, `PII_KEYS` syntax (`<id>:<32 random bytes,
 * base64url>`), to stdout only. To rotate, put it first in PII_KEYS and keep the old ones after it
 * (docs/security.md, "Rotation").
 */
export function registerPiiCommand(program: Command): void {
  const pii = program.command('pii').description('personal-data pseudonyms (docs/security.md)');
  pii
    .command('new-key')
    .description('print a new pseudonym key as PII_KEYS takes it (<id>:<secret>)')
    .argument('[id]', 'the key id, 1-16 letters or digits, carried in every pseudonym it makes', 'k1')
    .action((id: string) => {
      if (!/^[A-Za-z0-9]{1,16}$/.test(id)) {
        program.error(`engage pii new-key: the key id must be 1-16 letters or digits, not ${JSON.stringify(id)}`, {
          exitCode: 2,
        });
      }
      process.stdout.write(`${id}:${randomBytes(32).toString('base64url')}\n`);
    });
}
