// Follow GET /api/events (all the user's jobs, one group's or one study's): job snapshots and new-point
// notices pushed by the server. While the stream is down, `onFallback` runs every
// FALLBACK_MS so the page still catches up slowly; it stops when the stream is back.

import { openStream } from "./sse";
import type { Job, PointsEventData } from "./types";

export const FALLBACK_MS = 10_000;

export interface JobStreamHandlers {
  /** The stream is (re)connected: load the page's state now; changes from here on are pushed. */
  onConnected: () => void;
  onJob: (job: Job) => void;
  onPoints?: (data: PointsEventData) => void;
  /** Refresh by polling; called every FALLBACK_MS while the stream is down. */
  onFallback: () => void;
  onLive?: (live: boolean) => void;
}

/** Whose jobs a stream follows: a group id (or null: all), or `{ study }`. */
export type StreamScope = string | null | { study: string };

export function followJobs(scope: StreamScope, handlers: JobStreamHandlers): () => void {
  let fallback = 0;
  const startFallback = () => {
    if (fallback) return;
    handlers.onFallback(); // catch up at once, then slowly until the stream is back
    fallback = window.setInterval(handlers.onFallback, FALLBACK_MS);
  };
  const stopFallback = () => {
    window.clearInterval(fallback);
    fallback = 0;
  };
  const path =
    scope === null || scope === ""
      ? "/api/events"
      : typeof scope === "string"
        ? `/api/events?group=${encodeURIComponent(scope)}`
        : `/api/events?study=${encodeURIComponent(scope.study)}`;
  const close = openStream(path, {
    onState: (connected) => {
      handlers.onLive?.(connected);
      if (connected) {
        stopFallback();
        handlers.onConnected();
      } else startFallback();
    },
    onGiveUp: () => {
      handlers.onLive?.(false);
      startFallback();
    },
    onMessage: (message) => {
      if (message.event === "job") handlers.onJob(JSON.parse(message.data) as Job);
      else if (message.event === "points") handlers.onPoints?.(JSON.parse(message.data) as PointsEventData);
    },
  });
  return () => {
    close();
    stopFallback();
  };
}
