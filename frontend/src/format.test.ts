import { describe, expect, it } from "vitest";
import { compact, duration } from "./format";

describe("compact", () => {
  it("keeps axis labels short", () => {
    expect([compact(12_000), compact(2_500_000), compact(47), compact(59.23), compact(27.5), compact(0.04), compact(0.000012)]).toEqual([
      "12k",
      "2.5M",
      "47",
      "59.23",
      "27.5",
      "0.04",
      "1.2e-5",
    ]);
    expect(compact(null)).toBe("–");
  });
});

describe("duration", () => {
  it("reads as seconds, minutes or hours", () => {
    expect([duration(5), duration(125), duration(7260)]).toEqual(["5s", "2m 05s", "2h 01m"]);
  });
});
