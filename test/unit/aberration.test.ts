// The aberration algorithms (shared/aberration/algorithms.ts; docs/aberration.md) against series
// computed by hand here — the arithmetic is in the comments — including zero-variance baselines,
// missing days, baselines too short, the guard band, and the cluster rule.
import { describe, expect, it } from 'vitest';
import {
  cluster,
  EARS_DEFAULTS,
  earsC1,
  earsC2,
  earsC3,
  fixedThreshold,
  meanSd,
  movingPercentile,
  MPM_DEFAULTS,
  percentile,
} from '../../shared/aberration/algorithms.js';

describe('building blocks', () => {
  it('sample mean and sd (n − 1); null with a missing value or one value', () => {
    // 2,3,2,4,3,2,3: sum 19, mean 19/7; squared deviations sum 24/7; var (24/7)/6 = 4/7.
    const m = meanSd([2, 3, 2, 4, 3, 2, 3])!;
    expect(m.mean).toBeCloseTo(19 / 7, 12);
    expect(m.sd).toBeCloseTo(Math.sqrt(4 / 7), 12);
    expect(meanSd([1, null, 2])).toBeNull();
    expect(meanSd([5])).toBeNull();
  });

  it('percentiles by linear interpolation (R type 7)', () => {
    expect(percentile([4, 1, 3, 2], 50)).toBe(2.5); // h = 3 × 0.5 = 1.5: 2 + 0.5 × (3 − 2)
    expect(percentile([3, 1, 2], 90)).toBeCloseTo(2.8, 12); // h = 2 × 0.9 = 1.8: 2 + 0.8 × 1
    expect(percentile([7], 75)).toBe(7);
  });
});

describe('fixed threshold', () => {
  it('signals from the threshold on (1: every case), says nothing of a missing day', () => {
    expect(fixedThreshold([0, 0, 1], 2).signal).toBe(true);
    expect(fixedThreshold([0, 0, 0], 2).signal).toBe(false);
    expect(fixedThreshold([0, 2, 1], 2, 2).signal).toBe(false);
    expect(fixedThreshold([0, 0, null], 2).signal).toBeNull();
  });
});

describe('EARS', () => {
  it('C1: baseline the 7 days before; sd below the floor uses the floor', () => {
    // Baseline 2,3,2,4,3,2,3: mean 19/7 = 2.714, sd 0.756 < minSigma 1, so σ = 1; S1 = 10 − 2.714 = 7.286.
    const s = [2, 3, 2, 4, 3, 2, 3, 10];
    const e = earsC1(s, 7);
    expect(e.signal).toBe(true);
    expect(e.statistic).toBeCloseTo(10 - 19 / 7, 12);
    expect(e.expected).toBeCloseTo(19 / 7, 12);
    expect(e.threshold).toBeCloseTo(19 / 7 + 3, 12);
    // Without the floor σ = sd: S1 = 7.286 / 0.756 = 9.638.
    expect(earsC1(s, 7, { ...EARS_DEFAULTS, minSigma: 0 }).statistic).toBeCloseTo((10 - 19 / 7) / Math.sqrt(4 / 7), 10);
    // 5: S1 = 5 − 2.714 = 2.286, not above 3.
    expect(earsC1([2, 3, 2, 4, 3, 2, 3, 5], 7).signal).toBe(false);
  });

  it('C1 on a zero-variance baseline: the floor decides (1 case after 7 zero days is no signal, 4 is)', () => {
    expect(earsC1([0, 0, 0, 0, 0, 0, 0, 1], 7)).toMatchObject({ signal: false, statistic: 1 });
    expect(earsC1([0, 0, 0, 0, 0, 0, 0, 4], 7)).toMatchObject({ signal: true, statistic: 4 });
    // A floor of 0.2: one case is S1 = 5.
    expect(earsC1([0, 0, 0, 0, 0, 0, 0, 1], 7, { ...EARS_DEFAULTS, minSigma: 0.2 })).toMatchObject({ signal: true, statistic: 5 });
  });

  it('C1 and C2 say nothing with a missing baseline day or too short a series', () => {
    expect(earsC1([2, 3, null, 4, 3, 2, 3, 10], 7).signal).toBeNull();
    expect(earsC1([2, 3, 10], 2).signal).toBeNull();
    expect(earsC2([1, 1, 1, 1, 1, 1, 1, 1, 9], 8).signal).toBeNull(); // needs t − 9 ≥ 0
    expect(earsC1([2, 3, 2, 4, 3, 2, 3, null], 7).signal).toBeNull();
  });

  it('C2: baseline x[t−9..t−3], the two guard days ignored', () => {
    // Baseline 1,2,1,2,1,2,1: mean 10/7 = 1.429, sd 0.535 → σ = 1; S2 = 6 − 1.429 = 4.571 > 3.
    const s = [1, 2, 1, 2, 1, 2, 1, 50, 50, 6];
    const e = earsC2(s, 9);
    expect(e.signal).toBe(true);
    expect(e.statistic).toBeCloseTo(6 - 10 / 7, 12);
    // C1 on the same day takes the 50s into its baseline and sees nothing.
    expect(earsC1(s, 9).signal).toBe(false);
  });

  it('C3: the sum of max(0, S2 − 1) over t, t−1, t−2 above 2', () => {
    // x0..x8 = 2 (mean 2, sd 0 → σ 1). S2 at 9,10,11 = 1, 2, 3 → terms 0, 1, 2 → C3 = 3 > 2.
    const base = [2, 2, 2, 2, 2, 2, 2, 2, 2];
    expect(earsC3([...base, 3, 4, 5], 11)).toMatchObject({ signal: true, statistic: 3 });
    // 3, 4, 4 → terms 0, 1, 1 → C3 = 2, not above 2.
    expect(earsC3([...base, 3, 4, 4], 11)).toMatchObject({ signal: false, statistic: 2 });
    // A missing day in any of the three baselines: no decision.
    expect(earsC3([2, null, 2, 2, 2, 2, 2, 2, 2, 3, 4, 5], 11).signal).toBeNull();
  });
});

describe('moving percentile (MPM)', () => {
  // 3 years back plus today's period: the baseline windows end at t − 364y + 7k (y = 1..3, k = −2..2).
  const length = 3 * 364 + 30;
  const t = length - 1;
  const withBaseline = (values: number[], today: number[]): Array<number | null> => {
    const s: Array<number | null> = new Array(length).fill(0);
    let i = 0;
    for (let y = 1; y <= 3; y++) for (let k = -2; k <= 2; k++) s[t - 364 * y + 7 * k] = values[i++]!;
    for (const [j, v] of today.entries()) s[t - j] = v;
    return s;
  };
  const fifteen = Array.from({ length: 15 }, (_, i) => i + 1); // the 15 period sums 1..15: P50 = 8

  it('observes the last 7 days and compares with the percentile of the 15 baseline periods', () => {
    // Today's period: 3 + 5 = 8 cases ≥ P50 (8): signal.
    const e = movingPercentile(withBaseline(fifteen, [3, 0, 5]), t);
    expect(e).toMatchObject({ signal: true, observed: 8, threshold: 8, expected: 8 });
    // 7 < 8: none.
    expect(movingPercentile(withBaseline(fifteen, [7]), t).signal).toBe(false);
    // At P90 the threshold is 13 + 0.6 × (14 − 13) = 13.6 (h = 14 × 0.9 = 12.6).
    const p90 = movingPercentile(withBaseline(fifteen, [3, 0, 5]), t, { ...MPM_DEFAULTS, percentile: 90 });
    expect(p90.threshold).toBeCloseTo(13.6, 12);
    expect(p90.signal).toBe(false);
  });

  it('reaching the threshold signals with >= and not with >; no cases never signal', () => {
    const s = withBaseline(fifteen, [8]);
    expect(movingPercentile(s, t).signal).toBe(true);
    expect(movingPercentile(s, t, { ...MPM_DEFAULTS, compare: '>' }).signal).toBe(false);
    expect(movingPercentile(withBaseline(new Array(15).fill(0), []), t)).toMatchObject({ signal: false, observed: 0, threshold: 0 });
  });

  it('leaves out baseline periods with missing days, and decides nothing below the minimum baseline', () => {
    // Only one year of data before today: its 5 periods, the minimum; their values are 1..5 → P50 = 3.
    const s = withBaseline(fifteen, [13]);
    for (let i = 0; i < t - 364 - 2 * 7 - 6; i++) s[i] = null;
    const e = movingPercentile(s, t);
    expect(e).toMatchObject({ signal: true, observed: 13, threshold: 3 });
    // One more missing day inside that year's earliest period: 4 values, no decision.
    s[t - 364 - 14] = null;
    expect(movingPercentile(s, t).signal).toBeNull();
  });
});

describe('cluster rule', () => {
  it('counts the cases of the last D days, day t included', () => {
    expect(cluster([0, 1, 0, 1, 1], 4, { minCases: 3, days: 3 })).toMatchObject({ signal: false, observed: 2 });
    expect(cluster([0, 1, 0, 1, 1], 4, { minCases: 3, days: 4 })).toMatchObject({ signal: true, observed: 3 });
    expect(cluster([null, 2, null, 1], 3, { minCases: 3, days: 7 })).toMatchObject({ signal: true, observed: 3 });
  });
});
