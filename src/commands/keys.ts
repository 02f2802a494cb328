import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { sha256 } from '../access/keys.js';

export function newKey(): string {
  return `tg-${randomBytes(32).toString('base64url')}`;
}

function addKey(name: string, flags: { admin?: boolean }): void {
  const key = newKey();
  const digest = sha256(key).toString('hex');
  // Both entries name whom the key is for: a client key's name goes on its traces; the admin key's says whose it is.
  const entry = { name, sha256: digest };
  const where = flags.admin ? 'as auth.adminKey' : 'to auth.clientKeys';
  process.stdout.write(
    `key for ${name} (shown once; store it now):\n  ${key}\n\n` +
      `add this ${where} in the config (only the hash is kept there):\n  ${JSON.stringify(entry)}\n`,
  );
}

/** `tracegate keys add NAME [--admin]`: a new random key, printed once, and its hash entry for the config. */
export function withKeysCommand(program: Command): Command {
  const keys = program.command('keys').description('manage client and admin keys');
  keys
    .command('add')
    .argument('<name>', 'who the key is for (recorded on their traces)')
    .option('--admin', 'an admin key (for /stats, /dashboard, /metrics) instead of a client key')
    .description('make a new random key; prints it once, with the SHA-256 entry to put in the config')
    .action(addKey);
  return program;
}
