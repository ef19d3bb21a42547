// Server-Sent Events over fetch(), so the stream can carry the bearer token and resume
// with Last-Event-ID after a dropped connection (EventSource can send neither header).

import { authHeaders, UNAUTHORIZED_EVENT } from "./api";

export interface SseMessage {
  id: string | null;
  event: string;
  data: string;
}

/** Splits an SSE byte stream (already decoded to text) into messages. */
export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private id: string | null = null;
  lastEventId: string | null = null;
  retryMs: number | null = null;

  push(text: string, emit: (message: SseMessage) => void): void {
    this.buffer += text;
    // A trailing "\r" may be half of a "\r\n" split across chunks: wait for the next chunk.
    const complete = this.buffer.endsWith("\r") ? this.buffer.slice(0, -1) : this.buffer;
    const lines = complete.split(/\r\n|\r|\n/);
    this.buffer = (lines.pop() ?? "") + this.buffer.slice(complete.length); // an incomplete last line waits
    for (const line of lines) this.line(line, emit);
  }

  private line(line: string, emit: (message: SseMessage) => void): void {
    if (line === "") {
      if (this.id !== null) this.lastEventId = this.id;
      if (this.data.length) emit({ id: this.lastEventId, event: this.event || "message", data: this.data.join("\n") });
      this.data = [];
      this.event = "";
      this.id = null;
      return;
    }
    if (line.startsWith(":")) return; // comment / keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id") this.id = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
  }
}

export interface StreamHandlers {
  onMessage: (message: SseMessage) => void;
  /** Called with true when connected, false while reconnecting. */
  onState?: (connected: boolean) => void;
  /** Resume after this event id, as if reconnecting (skips what the caller already has). */
  lastEventId?: string;
  /** Called once if the server refuses the stream (a 4xx): it is not retried. */
  onGiveUp?: () => void;
}

/** Follow an SSE endpoint until the returned function is called; reconnects on its own. */
export function openStream(path: string, handlers: StreamHandlers): () => void {
  const controller = new AbortController();
  const parser = new SseParser();
  parser.lastEventId = handlers.lastEventId ?? null;
  let failures = 0;

  async function connectOnce(): Promise<boolean> {
    const headers: Record<string, string> = { Accept: "text/event-stream", ...authHeaders() };
    if (parser.lastEventId !== null) headers["Last-Event-ID"] = parser.lastEventId;
    const response = await fetch(path, { headers, signal: controller.signal, cache: "no-store" });
    if (response.status === 401) window.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
    // 429 (too many streams open): try again later; any other 4xx: give up.
    if (!response.ok || !response.body) return response.status >= 500 || response.status === 429;
    handlers.onState?.(true);
    failures = 0;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return true; // the server closed the stream: reconnect
      parser.push(value, handlers.onMessage);
    }
  }

  (async () => {
    while (!controller.signal.aborted) {
      let again = true;
      try {
        again = await connectOnce();
      } catch {
        // network error or abort: retry below unless closed
      }
      if (controller.signal.aborted) break;
      if (!again) {
        handlers.onGiveUp?.();
        break;
      }
      handlers.onState?.(false);
      failures += 1;
      const delay = Math.min(parser.retryMs ?? 1000 * 2 ** (failures - 1), 10_000);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  })();

  return () => controller.abort();
}
