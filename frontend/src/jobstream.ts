// Follow GET /api/events (all the user's jobs, or one group's): job snapshots and new-point
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

export function followJobs(group: string | null, handlers: JobStreamHandlers): () => void {
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
  const path = group ? `/api/events?group=${encodeURIComponent(group)}` : "/api/events";
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
