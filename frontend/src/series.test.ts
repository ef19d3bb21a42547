import { describe, expect, it } from "vitest";
import { align, appendPoints } from "./series";
import type { SeriesByKey } from "./types";

describe("appendPoints", () => {
  it("appends new steps only, per key", () => {
    const series: SeriesByKey = { a: { steps: [1, 2], values: [10, 20] } };
    const changed = appendPoints(
      series,
      [
        { step: 2, metrics: { a: 99 } },
        { step: 3, metrics: { a: 30, b: 1 } },
      ],
      ["a", "b"],
    );
    expect(changed).toBe(true);
    expect(series.a).toEqual({ steps: [1, 2, 3], values: [10, 20, 30] });
    expect(series.b).toEqual({ steps: [3], values: [1] });
  });
});

describe("align", () => {
  it("merges the steps of several keys, with nulls for gaps", () => {
    const series: SeriesByKey = {
      a: { steps: [1, 2, 4], values: [1, 2, 4] },
      b: { steps: [2, 3], values: [20, 30] },
    };
    expect(align(series, ["a", "b"])).toEqual([
      [1, 2, 3, 4],
      [1, 2, null, 4],
      [null, 20, 30, null],
    ]);
  });

  it("passes a single key through and tolerates missing keys", () => {
    expect(align({ a: { steps: [1], values: [5] } }, ["a"])).toEqual([[1], [5]]);
    expect(align({}, ["a", "b"])).toEqual([[], [], []]);
  });
});
