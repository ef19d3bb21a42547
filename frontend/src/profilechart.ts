// A study's performance profiles: per cell (or config), the fraction of its runs whose
// normalised score is above each tau, with the 95% bootstrap band the API computed.

import { LineChart, PALETTE, type LineSpec } from "./charts";
import { h, render } from "./dom";
import type { Profiles } from "./studyapi";

export class ProfileChart {
  private chart: LineChart | null = null;

  constructor(
    private readonly chartEl: HTMLElement,
    private readonly legendEl: HTMLElement,
    private readonly captionEl: HTMLElement,
  ) {}

  show(out: Profiles): void {
    const drawn = out.profiles.filter((p) => p.fractions.length > 0);
    this.chart?.destroy();
    this.chart = null;
    this.chartEl.dataset.lines = String(drawn.length);
    if (drawn.length === 0) {
      this.chartEl.dataset.points = "0";
      render(this.legendEl);
      render(this.captionEl, "No scores yet: the profile appears with the first runs' points.");
      return;
    }
    const lines: LineSpec[] = [];
    const bands: { hi: number; lo: number; color: string }[] = [];
    const columns: number[][] = [];
    drawn.forEach((p, i) => {
      const color = PALETTE[i % PALETTE.length];
      if (p.runs > 1) {
        lines.push({ label: `${p.label} upper`, color, edge: true }, { label: `${p.label} lower`, color, edge: true });
        bands.push({ hi: lines.length - 2, lo: lines.length - 1, color });
        columns.push(p.upper, p.lower);
      }
      lines.push({ label: p.label, color, width: 2 });
      columns.push(p.fractions);
    });
    this.chart = new LineChart(this.chartEl, { xLabel: "normalised score τ", lines, bands, height: 280, legend: false });
    this.chart.setData([out.taus, ...columns]);
    render(
      this.legendEl,
      drawn.map((p, i) =>
        h(
          "li",
          null,
          h("span", { class: "swatch", style: `background: ${PALETTE[i % PALETTE.length]}` }),
          h("strong", null, p.label || `cell ${p.cells.join(", ")}`),
          ` — ${p.runs} runs${p.partial ? " (some unfinished: scores so far)" : ""}`,
        ),
      ),
    );
    render(
      this.captionEl,
      `Fraction of runs whose score is above τ, on scores normalised per environment (${out.normalisation}); band: 95% stratified-bootstrap CI.`,
    );
  }

  destroy(): void {
    this.chart?.destroy();
  }
}
