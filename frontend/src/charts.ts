// Line charts on canvas (uPlot), sized to their container.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { compact } from "./format";

/** Okabe-Ito colours: distinct for colour-blind readers too. */
export const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999"];

export function withAlpha(hex: string, alpha: number): string {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

export interface LineSpec {
  label: string;
  color: string;
  width?: number;
  /** A band edge: drawn only as the fill of a band, never as a line. */
  edge?: boolean;
  /** Mark each point too: for sparse series (evaluations), whose single point has no line. */
  points?: boolean;
}

export interface ChartOptions {
  xLabel: string;
  lines: LineSpec[];
  /** Fill between two lines, by index into `lines`. */
  bands?: { hi: number; lo: number; color: string }[];
  height?: number;
  legend?: boolean;
}

/**
 * A uPlot chart that fills its container's width. The container's `data-points` holds the
 * number of x values drawn and `data-draw-ms` how long the last setData took to draw
 * (also a `rlserve:chart-draw` performance measure).
 */
export class LineChart {
  private readonly plot: uPlot;
  private readonly observer: ResizeObserver;
  private dataSetAt: number | null = null;

  constructor(
    private readonly container: HTMLElement,
    options: ChartOptions,
  ) {
    const height = options.height ?? 240;
    const series: uPlot.Series[] = [
      { label: options.xLabel, value: (_u, v) => compact(v) },
      ...options.lines.map(
        (line): uPlot.Series => ({
          label: line.label,
          stroke: line.edge ? "transparent" : line.color,
          width: line.edge ? 0 : (line.width ?? 1.5),
          points: line.points ? { show: true, size: 7, fill: line.color } : { show: false },
          spanGaps: true,
          value: (_u, v) => compact(v),
        }),
      ),
    ];
    this.plot = new uPlot(
      {
        width: Math.max(container.clientWidth, 200),
        height,
        series,
        bands: options.bands?.map((b) => ({ series: [b.hi + 1, b.lo + 1], fill: withAlpha(b.color, 0.18) })),
        scales: { x: { time: false } },
        axes: [
          { label: options.xLabel, values: (_u, splits) => splits.map(compact), size: 40, labelSize: 16 },
          { values: (_u, splits) => splits.map(compact), size: (_u, values) => 16 + 7 * Math.max(3, ...(values ?? []).map((v) => v.length)) },
        ],
        legend: { show: options.legend ?? true, live: true },
        cursor: { drag: { x: true, y: false } },
        hooks: { draw: [() => this.drawn()] },
      },
      [[], ...options.lines.map(() => [])],
      container,
    );
    let width = container.clientWidth;
    this.observer = new ResizeObserver(() => {
      if (container.clientWidth === width) return;
      width = container.clientWidth;
      requestAnimationFrame(() => this.plot.setSize({ width: Math.max(width, 200), height }));
    });
    this.observer.observe(container);
    container.dataset.bands = String(options.bands?.length ?? 0);
  }

  setData(data: uPlot.AlignedData): void {
    this.dataSetAt = performance.now();
    this.container.dataset.points = String(data[0].length);
    this.plot.setData(data);
  }

  private drawn(): void {
    if (this.dataSetAt === null) return;
    const end = performance.now();
    performance.measure("rlserve:chart-draw", { start: this.dataSetAt, end });
    this.container.dataset.drawMs = (end - this.dataSetAt).toFixed(1);
    this.dataSetAt = null;
  }

  destroy(): void {
    this.observer.disconnect();
    this.plot.destroy();
    this.container.replaceChildren();
  }
}
