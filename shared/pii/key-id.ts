/**
 * A new field key's id: `k` and 8 random hex digits (a lowercase letter and up to 15 lowercase letters
 * or digits, shared/pii KeyId). Random, never counted up from `k1`: a front set up again on a new
 * machine, or a rotation there, must not seal under the id of a key its restored data was sealed with,
 * or the two keys could never be told apart (docs/keys.md, docs/backup.md "Restore").
 */
import { randomBytes } from 'node:crypto';

export const newKeyId = (): string => `k${randomBytes(4).toString('hex')}`;
