import type { Problem } from '../errors';
import { read, type Env } from './parsers';
import { SETTINGS } from './settings';

/**
 * A Key Vault reference the platform could not resolve reaches the app as its literal text (for
 * example while the identity's role on the vault is still propagating). Taken as a password, it
 * would make every send fail with an Entra error far from the cause.
 */
export function unresolvedKeyVaultReferences(env: Env, problems: Problem[]): void {
  for (const { name } of SETTINGS) {
    if (read(env, name)?.startsWith('@Microsoft.KeyVault(')) {
      problems.push({
        path: name,
        message:
          "is a Key Vault reference the platform could not resolve: give the Function App's identity 'Key Vault Secrets User' on the vault, check the secret URI, then restart the app (the portal's Environment variables page shows the reference's status)",
      });
    }
  }
}
