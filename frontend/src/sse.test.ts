import { describe, expect, it } from "vitest";
import { SseParser, type SseMessage } from "./sse";

describe("SseParser", () => {
  it("parses events split across chunks, with ids, names, comments and retry", () => {
    const parser = new SseParser();
    const got: SseMessage[] = [];
    const emit = (m: SseMessage) => got.push(m);
    parser.push("retry: 1000\n\n: keep-alive\n\nid: 5-1\nevent: sta", emit);
    parser.push('tus\ndata: {"a":\ndata: 1}\n\n', emit);
    parser.push("id: 9-1\r\nevent: metrics\r\ndata: x\r", emit);
    parser.push("\n\r\n", emit);
    expect(got).toEqual([
      { id: "5-1", event: "status", data: '{"a":\n1}' },
      { id: "9-1", event: "metrics", data: "x" },
    ]);
    expect(parser.lastEventId).toBe("9-1");
    expect(parser.retryMs).toBe(1000);
  });
});
