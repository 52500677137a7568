/**
 * The remind function's configuration: the HIS's reminders on the data port (functions/remind).
 * One module per function, so that a bundle evaluates only the concerns its own function reads
 * (docs/configuration.md).
 */
import { z } from 'zod';
import { baseConcerns, composeConfig, concern } from '../index.js';
import { hisAuthConcern } from '../../http/auth.js';
import { piiConcern } from '../../pii/config.js';
import { warningConcern } from '../../warning/config.js';

/**
 * Reminder streams a replica keeps open (docs/his-guide.md 传染病提醒, docs/warning.md "Reminders"): each
 * holds one of the function's max_inflight slots for its 50 s, so one caller's streams must not take
 * the slots every other caller's polls, acknowledgements and exclusions need.
 *
 *   REMIND_STREAMS_PER_CALLER  streams one caller (an API key, a certificate, an address) may hold open (default 16)
 *   REMIND_STREAMS_MAX         streams in all (default: max_inflight less 16, the slots kept for the other calls)
 */
export const streamsConcern = concern({
  name: 'streams',
  vars: {
    REMIND_STREAMS_PER_CALLER: z.coerce.number().int().min(1).max(10_000).default(16),
    REMIND_STREAMS_MAX: z.coerce.number().int().min(1).max(100_000).optional(),
    max_inflight: z.coerce.number().int().min(0).optional(),
  },
  build: (c) => ({
    perCaller: c.REMIND_STREAMS_PER_CALLER,
    max: c.REMIND_STREAMS_MAX ?? Math.max(1, (c.max_inflight || 64) - 16),
  }),
});

export const remindConfig = composeConfig({
  ...baseConcerns,
  hisAuth: hisAuthConcern,
  warning: warningConcern,
  pii: piiConcern,
  streams: streamsConcern,
});
export type RemindSettings = ReturnType<typeof remindConfig.parse>;
