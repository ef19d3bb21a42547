import { describe, expect, it } from "vitest";
import { finalValues, groupVariants, type Run, type Variant } from "./compare";
import { resampleCurves, type CurveGroup } from "./curvedata";
import { branchFrom, forkLabel, parseAssignments } from "./lineage";
import type { Job } from "./types";

describe("parseAssignments", () => {
  it("reads numbers, booleans and names", () => {
    expect(parseAssignments("learning_rate=3e-4 total_steps=200000, anneal_lr=false model=lstm")).toEqual({
      learning_rate: 0.0003,
      total_steps: 200000,
      anneal_lr: false,
      model: "lstm",
    });
    expect(parseAssignments("  ")).toEqual({});
    expect(() => parseAssignments("learning_rate")).toThrow("not key=value");
  });
});

describe("branchFrom", () => {
  const parent = { steps: [100, 200, 300], values: [1, 3, 5] };

  it("puts the parent's points up to the fork step before the fork's own", () => {
    expect(branchFrom({ steps: [300, 400], values: [9, 10] }, parent, 200)).toEqual({
      series: { steps: [100, 200, 300, 400], values: [1, 3, 9, 10] },
      lead: 2,
    });
  });

  it("leaves the curve alone without a parent that has points up to the step", () => {
    const child = { steps: [500], values: [9] };
    expect(branchFrom(child, undefined, 400)).toEqual({ series: child, lead: 0 });
    expect(branchFrom(child, parent, 50)).toEqual({ series: child, lead: 0 });
    expect(branchFrom(child, parent, null)).toEqual({ series: child, lead: 0 });
  });
});

describe("forks on the compare page", () => {
  const job = (id: string, extra: Partial<Job> = {}) =>
    ({ id, parent_id: null, forked_at_step: null, spec: { algo: "a2c", model: "gru", env_id: "CartPole-v1", seed: 0, total_steps: 100 }, ...extra }) as unknown as Job;
  const run = (j: Job): Run => ({ job: j, xs: [], ys: [] });

  it("names the parent and the step, and never averages a fork with its parent", () => {
    const parent = job("aaaaaaaa11");
    const fork = job("bbbbbbbb22", { parent_id: parent.id, forked_at_step: 50_000 });
    const variants = groupVariants([run(parent), run(fork)]);
    expect(variants.map((v) => [v.label, v.runs.length])).toEqual([
      ["gru", 1],
      ["gru (fork of aaaaaaaa at 50k)", 1],
    ]);
    expect(forkLabel([fork, { ...fork, parent_id: "cccccccc33" }])).toBe("2 forks at 50k");
    expect(forkLabel([parent])).toBeNull();
  });

  it("draws the fork from where it leaves its parent's smoothed curve", () => {
    const parent = { ...run(job("aaaaaaaa11")), xs: [0, 10, 20], ys: [0, 10, 20] };
    const { series, lead } = branchFrom({ steps: [25, 30], values: [100, 100] }, { steps: parent.xs, values: parent.ys }, 20);
    const fork = { job: job("bbbbbbbb22", { parent_id: "aaaaaaaa11", forked_at_step: 20 }), xs: series.steps, ys: series.values, lead };
    const asGroup = (v: Variant): CurveGroup => ({ label: v.label, runs: v.runs.map((r) => ({ name: r.job.id, xs: r.xs, ys: r.ys, lead: r.lead })) });
    const { grid, runs } = resampleCurves(groupVariants([parent, fork]).map(asGroup), 0.5, 4);
    expect(grid).toEqual([0, 15, 20, 30]); // the fork step joins the grid, within the points asked for
    const [[p], [f]] = runs;
    expect(f[0]).toBeNaN();
    expect(f[1]).toBeNaN(); // the parent's lead is not drawn as the fork's
    expect(f[2]).toBeCloseTo(p[2]); // the curves meet at the fork
    expect(f[3]).toBeGreaterThan(p[2]);
    expect(p[3]).toBeNaN();
    expect(finalValues(groupVariants([fork])[0])).toEqual([100]); // scored on its own points
  });
});
