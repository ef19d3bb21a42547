import { describe, expect, it } from "vitest";
import { band, linspace, resample, smooth, tCritical95 } from "./stats";

describe("tCritical95", () => {
  it("matches the table for small df and approaches z for large df", () => {
    expect(tCritical95(1)).toBeCloseTo(12.706, 3);
    expect(tCritical95(2)).toBeCloseTo(4.303, 3);
    expect(tCritical95(4)).toBeCloseTo(2.776, 3);
    expect(tCritical95(30)).toBeCloseTo(2.042, 3);
    expect(tCritical95(60)).toBeCloseTo(2.0, 2);
    expect(tCritical95(1e6)).toBeCloseTo(1.96, 2);
  });
});

describe("band", () => {
  it("gives mean +- t * s / sqrt(n) for three seeds", () => {
    const b = band([[1], [2], [3]], "t95");
    // mean 2, s = 1, half-width = 4.303 / sqrt(3)
    expect(b.mean[0]).toBeCloseTo(2);
    expect(b.hi[0]! - 2).toBeCloseTo(4.303 / Math.sqrt(3), 3);
    expect(2 - b.lo[0]!).toBeCloseTo(4.303 / Math.sqrt(3), 3);
  });

  it("gives min and max, skips missing runs, and nulls empty points", () => {
    const b = band(
      [
        [1, NaN, NaN],
        [5, 2, NaN],
        [3, 4, NaN],
      ],
      "minmax",
    );
    expect([b.lo[0], b.mean[0], b.hi[0]]).toEqual([1, 3, 5]);
    expect([b.lo[1], b.mean[1], b.hi[1]]).toEqual([2, 3, 4]);
    expect([b.lo[2], b.mean[2], b.hi[2]]).toEqual([null, null, null]);
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
