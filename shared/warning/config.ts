/**
 * The warning function's settings (a concern of shared/config), parsed once at start; fails fast
 * naming the variable (docs/warning.md "Settings").
 *
 *   WARNING_TRIGGERS_FILE    a hospital's own trigger list (JSON, the shape of shared/warning/triggers.json);
 *                            empty: the built-in list. Read and validated at start.
 *   WARNING_BATCH            history rows evaluated per transaction             (default 200)
 *   WARNING_CASE_WINDOW_DAYS a reported or closed case older than this starts anew (default 90)
 *   WARNING_ORPHAN_WAIT_S    an item waits this long for its header's patient    (default 86400)
 */
import { z } from 'zod';
import { concern } from '../config/index.js';
import { loadTriggers, type TriggerSet } from './triggers.js';

export interface WarningConfig {
  triggers: TriggerSet;
  batch: number;
  caseWindowDays: number;
  orphanWaitMs: number;
}

export const warningConcern = concern({
  name: 'warning',
  vars: {
    WARNING_TRIGGERS_FILE: z.string().optional(),
    WARNING_BATCH: z.coerce.number().int().min(1).max(5000).default(200),
    WARNING_CASE_WINDOW_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
    WARNING_ORPHAN_WAIT_S: z.coerce
      .number()
      .int()
      .min(0)
      .max(30 * 86_400)
      .default(86_400),
  },
  build: (c): WarningConfig => ({
    triggers: loadTriggers(c.WARNING_TRIGGERS_FILE || undefined),
    batch: c.WARNING_BATCH,
    caseWindowDays: c.WARNING_CASE_WINDOW_DAYS,
    orphanWaitMs: c.WARNING_ORPHAN_WAIT_S * 1000,
  }),
});
