import { describe, expect, it } from "vitest";
import { finalValues, groupVariants, toWallTime, type Run } from "./compare";
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

describe("finalValues and toWallTime", () => {
  it("gives each run's mean over its last 10% of points", () => {
    const ys = Array.from({ length: 20 }, (_, i) => i);
    const variant = groupVariants([run("mlp", 0, ys, ys), run("mlp", 1, [1], [2]), run("mlp", 2, [], [])])[0];
    expect(finalValues(variant)).toEqual([18.5, 2]);
  });

  it("maps steps to seconds through the wall-time series", () => {
    expect(toWallTime([0, 50, 100], { steps: [0, 100], values: [0, 10] })).toEqual([0, 5, 10]);
  });
});
