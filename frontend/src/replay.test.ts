import { describe, expect, it } from "vitest";
import { divergingColor, maxAbs, stepAt, timeOf } from "./replay";

describe("replay time", () => {
  it("maps a video time to its step and back", () => {
    expect(stepAt(0, 30, 100)).toBe(0);
    expect(stepAt(1, 30, 100)).toBe(30);
    expect(stepAt(99, 30, 100)).toBe(99); // past the end: the last step
    expect(stepAt(-1, 30, 100)).toBe(0);
    for (const step of [0, 7, 99]) expect(stepAt(timeOf(step, 30), 30, 100)).toBe(step);
  });
});

describe("heatmap colours", () => {
  it("is white at zero, red above, blue below", () => {
    expect(divergingColor(0, 1)).toEqual([255, 255, 255]);
    expect(divergingColor(1, 1)).toEqual([178, 24, 43]);
    expect(divergingColor(-2, 1)).toEqual([33, 102, 172]); // clipped
    expect(maxAbs([[0.5, -2], [1, 0]])).toBe(2);
    expect(maxAbs([[0]])).toBe(1);
  });
});
