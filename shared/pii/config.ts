/**
 * The field keys as a function's configuration (docs/configuration.md): the two secret files every
 * function that writes or reads personal data is given (stack.yml `secrets`). Parsing at start reads
 * and checks them and installs them as the process's keys; CDC_ENV=production without them fails the
 * start, naming the files (docs/keys.md).
 */
import { concern } from '../config/index.js';
import { FIELD_KEYS_SECRET, HASH_KEY_SECRET, keysFromSecrets, Pii, setPii } from './index.js';

export const piiConcern = concern({
  name: 'pii',
  vars: {},
  secrets: [FIELD_KEYS_SECRET, HASH_KEY_SECRET],
  build: (_v, secret, env) => {
    const production = env.CDC_ENV === 'production';
    const p = new Pii(() => keysFromSecrets(secret, production));
    p.keys(); // read now: a missing or malformed file fails the start
    setPii(p);
    return p;
  },
});
