// The band under each curve: a 95% bootstrap CI of the seeds' mean or IQM (or a t-interval),
// clipped to the range the seeds reached, from POST /api/stats/bands (rlcore.stats.curve_band);
// or the seeds' min and max, computed here.

import { sendJson } from "./api";
import { toWire } from "./curvedata";
import { minMaxBand, type Band } from "./stats";

export type BandKind = "bootstrap" | "iqm" | "t95" | "minmax";
export const BAND_KINDS: BandKind[] = ["bootstrap", "iqm", "t95", "minmax"];
export const DEFAULT_BAND: BandKind = "bootstrap";

/** What the band shows, for the selector and the legend. */
export const BAND_LABEL: Record<BandKind, string> = {
  bootstrap: "95% bootstrap CI of the mean",
  iqm: "95% bootstrap CI of the IQM",
  t95: "95% t-interval of the mean",
  minmax: "min–max of the seeds",
};

/** The line drawn with the band: the seeds' mean, or their IQM. */
export const CENTER_NAME: Record<BandKind, string> = { bootstrap: "mean", iqm: "IQM", t95: "mean", minmax: "mean" };

export function parseBandKind(value: string | null | undefined): BandKind {
  return BAND_KINDS.includes(value as BandKind) ? (value as BandKind) : DEFAULT_BAND;
}

interface BandsOut {
  reps: number;
  bands: Band[];
}

/** The band of every curve (`curves[c][run][point]`, NaN for no value), in the order given. */
export async function computeBands(curves: readonly number[][][], kind: BandKind): Promise<Band[]> {
  if (kind === "minmax") return curves.map(minMaxBand);
  const out = await sendJson<BandsOut>("POST", "/api/stats/bands", {
    curves: curves.map(toWire),
    statistic: kind === "iqm" ? "iqm" : "mean",
    method: kind === "t95" ? "t" : "bootstrap",
  });
  return out.bands;
}

/**
 * One interval per sample of scores (a variant's final returns), by the same method as the
 * bands: each sample is a curve of one point. Null for an empty sample.
 */
export async function scoreIntervals(samples: readonly number[][], kind: BandKind): Promise<({ center: number; lower: number; upper: number } | null)[]> {
  const filled = samples.filter((s) => s.length > 0);
  const bands = filled.length ? await computeBands(filled.map((s) => s.map((v) => [v])), kind) : [];
  let next = 0;
  return samples.map((s) => {
    if (s.length === 0) return null;
    const { center, lower, upper } = bands[next++];
    return { center: center[0] ?? NaN, lower: lower[0] ?? NaN, upper: upper[0] ?? NaN };
  });
}
