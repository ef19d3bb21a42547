import { describe, expect, it } from "vitest";
import { linspace, minMaxBand, resample, smooth } from "./stats";

describe("minMaxBand", () => {
  it("gives mean, min and max, skips missing runs, and nulls empty points", () => {
    const b = minMaxBand([
      [1, NaN, NaN],
      [5, 2, NaN],
      [3, 4, NaN],
    ]);
    expect([b.lower[0], b.center[0], b.upper[0]]).toEqual([1, 3, 5]);
    expect([b.lower[1], b.center[1], b.upper[1]]).toEqual([2, 3, 4]);
    expect([b.lower[2], b.center[2], b.upper[2]]).toEqual([null, null, null]);
    expect(b.n).toEqual([3, 2, 0]);
  });
});

describe("resample", () => {
  it("interpolates inside the run and leaves NaN outside it", () => {
    const out = resample([10, 20, 40], [0, 10, 30], [0, 10, 15, 30, 40, 50]);
    expect(out.slice(1, 5)).toEqual([0, 5, 20, 30]);
    expect(Number.isNaN(out[0]) && Number.isNaN(out[5])).toBe(true);
  });

  it("handles repeated steps from min/max downsampling", () => {
    expect(resample([0, 10, 10, 20], [0, 1, 3, 5], [5, 15])).toEqual([0.5, 4]);
  });
});

describe("smooth and linspace", () => {
  it("leaves a constant series unchanged and is a copy at weight 0", () => {
    expect(smooth([3, 3, 3], 0.9).map((v) => +v.toFixed(9))).toEqual([3, 3, 3]);
    expect(smooth([1, 2], 0)).toEqual([1, 2]);
  });

  it("spaces points evenly", () => {
    expect(linspace(0, 10, 3)).toEqual([0, 5, 10]);
  });
});
