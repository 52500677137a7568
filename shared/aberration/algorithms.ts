/**
 * Aberration detection over daily counts (docs/aberration.md): fixed threshold, the moving percentile
 * method (MPM, CIDARS), EARS C1/C2/C3, and the cluster rule. Pure functions over a series of daily
 * counts; the decisions the published definitions leave open are the options below, documented there.
 *
 * A series is an array of daily counts, index 0 the oldest day; `null` is a day without data (the
 * front was not running, or before it started), which is not the same as 0 cases.
 */

export type Series = ReadonlyArray<number | null>;

export interface Evaluation {
  /** true: signal; false: no signal; null: not enough baseline to decide. */
  signal: boolean | null;
  observed: number;
  /** The baseline's centre (mean, or the percentile's median reference), when there is one. */
  expected: number | null;
  /** The value the observation is compared with. */
  threshold: number | null;
  /** The algorithm's statistic (S1, S2, C3), when it has one. */
  statistic: number | null;
}

const none = (observed: number): Evaluation => ({ signal: null, observed, expected: null, threshold: null, statistic: null });

/** Sample mean and standard deviation (n − 1) of complete values; null when any is missing or n < 2. */
export function meanSd(values: ReadonlyArray<number | null>): { mean: number; sd: number } | null {
  if (values.length < 2 || values.some((v) => v === null)) return null;
  const xs = values as number[];
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
  return { mean, sd };
}

/** The p-th percentile (0–100) by linear interpolation between order statistics (R's type 7). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of nothing');
  const xs = [...values].sort((a, b) => a - b);
  const h = (xs.length - 1) * (p / 100);
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return xs[lo]! + (h - lo) * (xs[hi]! - xs[lo]!);
}

/** Fixed threshold (固定阈值法): a signal when the day's count reaches `threshold` (1: every case). */
export function fixedThreshold(series: Series, t: number, threshold = 1): Evaluation {
  const x = series[t];
  if (x === null || x === undefined) return none(0);
  return { signal: x >= threshold, observed: x, expected: null, threshold, statistic: null };
}

export interface EarsOptions {
  /** Baseline length (days): 7. */
  baseline: number;
  /** Alarm when S > this (C1, C2): 3. */
  limit: number;
  /** Alarm when C3 > this: 2. */
  c3Limit: number;
  /** Floor of the baseline's standard deviation (zero-variance baselines): 1 for sparse hospital counts. */
  minSigma: number;
}
export const EARS_DEFAULTS: EarsOptions = { baseline: 7, limit: 3, c3Limit: 2, minSigma: 1 };

/** S_t = (x_t − mean) / max(sd, minSigma) over the `baseline` days ending `lag` days before t. */
function earsStatistic(series: Series, t: number, lag: number, o: EarsOptions): { s: number; mean: number; sigma: number } | null {
  const x = series[t];
  const from = t - lag - o.baseline + 1;
  if (x === null || x === undefined || from < 0) return null;
  const m = meanSd(series.slice(from, t - lag + 1));
  if (!m) return null;
  const sigma = Math.max(m.sd, o.minSigma);
  return { s: (x - m.mean) / sigma, mean: m.mean, sigma };
}

/** EARS C1-MILD: baseline x_{t−7..t−1}; S1 = (x_t − μ)/σ; alarm if S1 > 3. */
export function earsC1(series: Series, t: number, o: EarsOptions = EARS_DEFAULTS): Evaluation {
  const r = earsStatistic(series, t, 1, o);
  if (!r) return none(series[t] ?? 0);
  return { signal: r.s > o.limit, observed: series[t]!, expected: r.mean, threshold: r.mean + o.limit * r.sigma, statistic: r.s };
}

/** EARS C2-MEDIUM: baseline x_{t−9..t−3} (a 2-day guard band); alarm if S2 > 3. */
export function earsC2(series: Series, t: number, o: EarsOptions = EARS_DEFAULTS): Evaluation {
  const r = earsStatistic(series, t, 3, o);
  if (!r) return none(series[t] ?? 0);
  return { signal: r.s > o.limit, observed: series[t]!, expected: r.mean, threshold: r.mean + o.limit * r.sigma, statistic: r.s };
}

/** EARS C3-ULTRA (the textbook form, day t included): C3 = Σ_{i=0..2} max(0, S2_{t−i} − 1); alarm if C3 > 2. */
export function earsC3(series: Series, t: number, o: EarsOptions = EARS_DEFAULTS): Evaluation {
  const terms: number[] = [];
  for (let i = 0; i <= 2; i++) {
    const r = earsStatistic(series, t - i, 3, o);
    if (!r) return none(series[t] ?? 0);
    terms.push(Math.max(0, r.s - 1));
  }
  const c3 = terms.reduce((a, b) => a + b, 0);
  const today = earsStatistic(series, t, 3, o)!;
  return { signal: c3 > o.c3Limit, observed: series[t]!, expected: today.mean, threshold: o.c3Limit, statistic: c3 };
}

export interface MpmOptions {
  /** Observation period (days): 7. */
  period: number;
  /** Previous years in the baseline: 3. */
  years: number;
  /** Neighbouring periods on each side of the same period: 2 (so 5 periods a year, 15 values). */
  neighbours: number;
  /** Days in a year for the baseline: 364 (52 weeks, so weekdays line up). */
  yearDays: number;
  /** The percentile of the baseline that is the threshold: 50 (P50), or per disease. */
  percentile: number;
  /** `>=` (reaching the threshold, CIDARS's 达到预警阈值) or `>`. */
  compare: '>=' | '>';
  /** Fewest baseline values to decide at all (periods with missing days are left out). */
  minBaseline: number;
}
export const MPM_DEFAULTS: MpmOptions = { period: 7, years: 3, neighbours: 2, yearDays: 364, percentile: 50, compare: '>=', minBaseline: 5 };

/** The sum of the `period` days ending at day e, or null when a day is missing or before the series. */
function periodSum(series: Series, e: number, period: number): number | null {
  if (e - period + 1 < 0 || e >= series.length) return null;
  let s = 0;
  for (let i = e - period + 1; i <= e; i++) {
    const v = series[i];
    if (v === null || v === undefined) return null;
    s += v;
  }
  return s;
}

/**
 * Moving percentile (移动百分位数法): O_t = cases in the `period` days ending t; the baseline is the
 * same period and its `neighbours` on each side in each of the previous `years`; threshold = its
 * `percentile`. A signal when O_t reaches it (`compare`), never when O_t = 0.
 */
export function movingPercentile(series: Series, t: number, o: MpmOptions = MPM_DEFAULTS): Evaluation {
  const observed = periodSum(series, t, o.period);
  if (observed === null) return none(series[t] ?? 0);
  const baseline: number[] = [];
  for (let y = 1; y <= o.years; y++) {
    for (let k = -o.neighbours; k <= o.neighbours; k++) {
      const v = periodSum(series, t - y * o.yearDays + k * o.period, o.period);
      if (v !== null) baseline.push(v);
    }
  }
  if (baseline.length < o.minBaseline) return none(observed);
  const threshold = percentile(baseline, o.percentile);
  const reached = o.compare === '>=' ? observed >= threshold : observed > threshold;
  return { signal: observed > 0 && reached, observed, expected: percentile(baseline, 50), threshold, statistic: null };
}

/** Cluster rule: at least `minCases` in the `days` days ending t (one disease or syndrome, one department). */
export function cluster(series: Series, t: number, o: { minCases: number; days: number }): Evaluation {
  let n = 0;
  for (let i = Math.max(0, t - o.days + 1); i <= t; i++) n += series[i] ?? 0;
  return { signal: n >= o.minCases, observed: n, expected: null, threshold: o.minCases, statistic: null };
}
