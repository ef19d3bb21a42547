import { describe, expect, it } from "vitest";
import { curves, finalScore, groupVariants, toWallTime, type Run } from "./compare";
import type { Job } from "./types";

function run(model: string, seed: number, xs: number[], ys: number[]): Run {
  const job = { id: `${model}${seed}`, spec: { algo: "ppo", model, env_id: "CartPole-v1", seed, total_steps: 100 } } as unknown as Job;
  return { job, xs, ys };
}

describe("groupVariants", () => {
  it("groups seeds of one spec and labels variants by the field that differs", () => {
    const variants = groupVariants([run("mlp", 0, [], []), run("gru", 0, [], []), run("mlp", 1, [], [])]);
    expect(variants.map((v) => [v.label, v.runs.length])).toEqual([
      ["mlp", 2],
      ["gru", 1],
    ]);
  });
});

describe("curves", () => {
  it("averages runs with different step grids on one grid", () => {
    const variants = groupVariants([run("mlp", 0, [0, 10], [0, 10]), run("mlp", 1, [0, 5, 10], [2, 7, 12])]);
    const { grid, curves: out } = curves(variants, "minmax", 0, 3);
    expect(grid).toEqual([0, 5, 10]);
    expect(out[0].band.mean).toEqual([1, 6, 11]);
    expect(out[0].band.lo).toEqual([0, 5, 10]);
    expect(out[0].band.hi).toEqual([2, 7, 12]);
  });
});

describe("finalScore and toWallTime", () => {
  it("gives the mean of the final returns with a t half-width", () => {
    const variant = groupVariants([run("mlp", 0, [1], [1]), run("mlp", 1, [1], [2]), run("mlp", 2, [1], [3])])[0];
    const score = finalScore(variant)!;
    expect(score.n).toBe(3);
    expect(score.mean).toBeCloseTo(2);
    expect(score.halfWidth).toBeCloseTo(4.303 / Math.sqrt(3), 3);
  });

  it("maps steps to seconds through the wall-time series", () => {
    expect(toWallTime([0, 50, 100], { steps: [0, 100], values: [0, 10] })).toEqual([0, 5, 10]);
  });
});
