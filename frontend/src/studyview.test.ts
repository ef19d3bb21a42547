import { describe, expect, it } from "vitest";
import type { Aggregate, StudyCell } from "./studyapi";
import { intervalText, runsText, sortCells, StepRate, valueText } from "./studyview";

function cell(index: number, iqm: number | null, jobs: Partial<StudyCell["progress"]["jobs"]> = {}): StudyCell {
  const agg: Aggregate = iqm === null ? { n: 0, mean: null, iqm: null } : { n: 3, mean: { point: -iqm, low: 0, high: 0 }, iqm: { point: iqm, low: 0, high: 0 } };
  const none: Aggregate = { n: 0, mean: null, iqm: null };
  return {
    index,
    values: {},
    label: "",
    env_id: "CartPole-v1",
    runs: [],
    progress: { steps: 0, total_steps: 0, percent: 0, jobs: { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, ...jobs } },
    partial: false,
    scores: { final: agg, mmer: none, eval: none },
    is_best: false,
    best_improvement: null,
  };
}

describe("sortCells", () => {
  const cells = [cell(0, 10), cell(1, null), cell(2, 30), cell(3, 10)];
  it("sorts by score either way, unscored cells last, ties by index", () => {
    expect(sortCells(cells, { key: "iqm", descending: true }, "final").map((c) => c.index)).toEqual([2, 0, 3, 1]);
    expect(sortCells(cells, { key: "iqm", descending: false }, "final").map((c) => c.index)).toEqual([0, 3, 2, 1]);
    expect(sortCells(cells, { key: "mean", descending: true }, "final").map((c) => c.index)).toEqual([0, 3, 2, 1]);
    expect(sortCells(cells, { key: "iqm", descending: true }, "mmer").map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(sortCells(cells, { key: "index", descending: true }, "final").map((c) => c.index)).toEqual([3, 2, 1, 0]);
  });
});

describe("texts", () => {
  it("writes intervals, values and run states", () => {
    expect(intervalText({ point: 412.4, low: 380, high: 440.2 })).toBe("412 [380, 440]");
    expect(intervalText(null)).toBe("–");
    expect(valueText(0.00025)).toBe("0.00025");
    expect(valueText("gru")).toBe("gru");
    expect(runsText(cell(0, null, { succeeded: 2, running: 1 }))).toBe("2 done · 1 running");
    expect(runsText(cell(0, null))).toBe("no runs");
  });
});

describe("StepRate", () => {
  it("gives no ETA before two looks a few seconds apart, then remaining / rate", () => {
    const rate = new StepRate(60_000, 2_000);
    rate.record("c", 0, 0);
    expect(rate.eta("c", 1000)).toBeNull();
    rate.record("c", 100, 1_000);
    expect(rate.eta("c", 1000)).toBeNull(); // 1 s: too short to tell
    rate.record("c", 400, 4_000); // 100 steps/s
    expect(rate.eta("c", 1000)).toBeCloseTo(6);
    rate.record("c", 400, 70_000); // stalled for a minute: the window forgets the old rate
    rate.record("c", 400, 71_000);
    expect(rate.eta("c", 1000)).toBeNull();
  });
});
