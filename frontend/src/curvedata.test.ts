import { describe, expect, it } from "vitest";
import { gridPoints, MAX_BAND_VALUES, resampleCurves, toWire, type CurveGroup } from "./curvedata";

const group = (label: string, ...runs: [number[], number[]][]): CurveGroup => ({
  label,
  runs: runs.map(([xs, ys], i) => ({ name: `seed ${i}`, xs, ys })),
});

describe("resampleCurves", () => {
  it("puts runs with different steps on one grid spanning every group, NaN where a run has not reached", () => {
    const { grid, runs } = resampleCurves(
      [group("a", [[0, 10], [0, 10]], [[0, 5], [2, 7]]), group("b", [[0, 20], [0, 40]])],
      0,
      5,
    );
    expect(grid).toEqual([0, 5, 10, 15, 20]);
    expect(runs[0][0].slice(0, 3)).toEqual([0, 5, 10]);
    expect(runs[0][1].slice(0, 2)).toEqual([2, 7]);
    expect(runs[0][1].slice(2).every(Number.isNaN)).toBe(true);
    expect(runs[1][0]).toEqual([0, 10, 20, 30, 40]);
  });

  it("gives an empty grid when no run has a point", () => {
    expect(resampleCurves([group("a", [[], []])], 0.6, 10)).toEqual({ grid: [], runs: [[[]]] });
  });
});

describe("gridPoints and toWire", () => {
  it("keeps a request within the API's limit", () => {
    expect(gridPoints(9)).toBe(400);
    expect(gridPoints(300) * 300).toBeLessThanOrEqual(MAX_BAND_VALUES);
    expect(gridPoints(300)).toBe(200);
  });

  it("sends null for no value and 6 significant digits", () => {
    expect(toWire([[1 / 3, NaN, 123456789]])).toEqual([[0.333333, null, 123457000]]);
  });
});
