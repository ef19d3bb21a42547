// One chart of several groups of runs: per group its seeds drawn faintly, a line (their mean
// or IQM) and a band, with a legend that says n and how the band was made. The compare page
// draws a group's variants with it, the study page its selected cells.
//
// Bands other than min-max come from the API; while one request is out, a newer update waits
// and then asks for the latest state only, so dragging the smoothing slider sends a request
// at a time, and an answer never overwrites what a newer update drew.

import { BAND_KINDS, BAND_LABEL, CENTER_NAME, computeBands, type BandKind } from "./bands";
import { LineChart, PALETTE, withAlpha, type LineSpec } from "./charts";
import { gridPoints, hasOwnPoints, resampleCurves, type CurveGroup } from "./curvedata";
import { h, render } from "./dom";
import { minMaxBand, type Band } from "./stats";

export interface CurveView {
  band: BandKind;
  smoothing: number;
  xLabel: string;
}

/** What was drawn, on the chart element as `curveData` (for tests and the curious). */
export interface CurveData {
  band: BandKind;
  grid: number[];
  curves: { label: string; n: number; center: (number | null)[]; lower: (number | null)[]; upper: (number | null)[]; seeds: (number | null)[][] }[];
}

const SEED_ALPHA = 0.4;

export class CurvePanel {
  private chart: LineChart | null = null;
  private updates = 0; // numbers every update()
  private drawnUpdate = 0; // the update whose data the chart shows
  private waiting = false;
  private next: (() => void) | null = null;
  private destroyed = false;

  constructor(
    private readonly chartEl: HTMLElement,
    private readonly legendEl: HTMLElement,
    private readonly height = 360,
  ) {}

  /** Draw these groups (each group a colour, in order); bands may arrive a moment later. */
  update(groups: CurveGroup[], view: CurveView): void {
    const update = ++this.updates;
    if (this.waiting) {
      this.next = () => this.update(groups, view);
      return;
    }
    const points = gridPoints(groups.reduce((a, g) => a + g.runs.length, 0));
    const { grid, runs } = resampleCurves(groups, view.smoothing, points);
    const kind = grid.length === 0 ? "minmax" : view.band;
    this.waiting = kind !== "minmax";
    computeBands(runs, kind).then(
      (bands) => this.drawIfLatest(update, groups, view, grid, runs, bands, null),
      (error: Error) => this.drawIfLatest(update, groups, view, grid, runs, null, error.message),
    ).finally(() => {
      this.waiting = false;
      const next = this.next;
      this.next = null;
      next?.();
    });
  }

  private drawIfLatest(update: number, groups: CurveGroup[], view: CurveView, grid: number[], runs: number[][][], bands: Band[] | null, error: string | null): void {
    if (this.destroyed || update < this.drawnUpdate) return;
    this.drawnUpdate = update;
    // Without the API's band (it failed), the mean still shows, with no band.
    const shown = bands ?? runs.map(meanOnly);
    this.draw(groups, view, grid, runs, shown, bands !== null);
    if (error) this.legendEl.append(h("li", { class: "error", role: "alert" }, `No band: ${error}`));
  }

  private draw(groups: CurveGroup[], view: CurveView, grid: number[], runs: number[][][], bands: Band[], withBands: boolean): void {
    const lines: LineSpec[] = [];
    const columns: (number | null)[][] = [];
    const fills: { hi: number; lo: number; color: string }[] = [];
    const data: CurveData = { band: view.band, grid, curves: [] };
    const colour = (i: number) => PALETTE[i % PALETTE.length];
    const nan = (column: number[]) => column.map((v) => (Number.isFinite(v) ? v : null));
    // Seeds first, so that the bands and lines are drawn over them.
    groups.forEach((group, g) => {
      if (group.runs.length < 2) return;
      group.runs.forEach((run, r) => {
        lines.push({ label: `${group.label} ${run.name}`, color: withAlpha(colour(g), SEED_ALPHA), width: 1 });
        columns.push(nan(runs[g][r]));
      });
    });
    groups.forEach((group, g) => {
      const band = bands[g];
      if (withBands && group.runs.length > 1) {
        lines.push({ label: `${group.label} upper`, color: colour(g), edge: true }, { label: `${group.label} lower`, color: colour(g), edge: true });
        fills.push({ hi: lines.length - 2, lo: lines.length - 1, color: colour(g) });
        columns.push(band.upper, band.lower);
      }
      lines.push({ label: group.label, color: colour(g), width: 2 });
      columns.push(band.center);
      data.curves.push({ label: group.label, n: seedsWithData(group), center: band.center, lower: band.lower, upper: band.upper, seeds: runs[g].map(nan) });
    });
    this.chart?.destroy();
    this.chart = new LineChart(this.chartEl, { xLabel: view.xLabel, lines, bands: fills, height: this.height, legend: false });
    this.chart.setData([grid, ...columns]);
    (this.chartEl as HTMLElement & { curveData?: CurveData }).curveData = data;
    this.chartEl.dataset.band = withBands ? view.band : "none";
    const band = withBands ? view.band : null;
    render(this.legendEl, groups.map((group, g) => legendItem(group, colour(g), band)), legendNote(groups, band));
  }

  destroy(): void {
    this.destroyed = true;
    this.chart?.destroy();
  }
}

function meanOnly(runs: number[][]): Band {
  const { center, n } = minMaxBand(runs);
  return { center, lower: center, upper: center, n };
}

const seedsWithData = (group: CurveGroup) => group.runs.filter(hasOwnPoints).length;

function legendItem(group: CurveGroup, color: string, band: BandKind | null): HTMLElement {
  const n = seedsWithData(group);
  const what = n === 0 ? "no points yet" : group.runs.length < 2 ? "n=1, no band" : `${CENTER_NAME[band ?? "bootstrap"]} of n=${n} seeds`;
  return h("li", null, h("span", { class: "swatch", style: `background: ${color}` }), h("strong", null, group.label), ` — ${what}`);
}

/** How the lines and bands were made, once for all of them. */
function legendNote(groups: CurveGroup[], band: BandKind | null): HTMLElement | null {
  if (!groups.some((g) => g.runs.length > 1)) return null;
  const how = band === null ? "no band (it could not be computed)" : band === "minmax" ? `band: ${BAND_LABEL[band]}` : `band: ${BAND_LABEL[band]} at each step, clipped to the range the seeds reached`;
  return h("li", { class: "note" }, `Faint lines: each seed; ${how}.`);
}

/** The band selector (`id`), with every kind the panel draws. */
export function bandSelect(id: string, value: BandKind, changed: (kind: BandKind) => void): HTMLSelectElement {
  const select = h("select", { id }, BAND_KINDS.map((k) => h("option", { value: k, selected: k === value }, BAND_LABEL[k])));
  select.addEventListener("change", () => changed(select.value as BandKind));
  return select;
}
