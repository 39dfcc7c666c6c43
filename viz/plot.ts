/**
 * Training curves from a run's metrics.jsonl as an SVG: loss (training, validation) and error
 * (training top-1, validation top-1 and top-5) per epoch.
 *
 * @module
 */
import type { EpochMetrics } from "../train/trainer.ts";

interface Series {
  label: string;
  colour: string;
  values: number[];
}

const PANEL = { width: 420, height: 300, left: 56, right: 16, top: 34, bottom: 44 };

// A "nice" step for about five ticks over [0, max].
function tickStep(max: number): number {
  const raw = max / 5, power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
}

function panel(
  x0: number,
  title: string,
  unit: string,
  epochs: number[],
  series: Series[],
): string {
  const { width, height, left, right, top, bottom } = PANEL;
  const w = width - left - right, h = height - top - bottom;
  const max = Math.max(...series.flatMap((s) => s.values).filter(Number.isFinite), 1e-9);
  const step = tickStep(max), yMax = Math.ceil(max / step) * step;
  const first = epochs[0], last = Math.max(epochs[epochs.length - 1], first + 1);
  const px = (e: number) => x0 + left + ((e - first) / (last - first)) * w;
  const py = (v: number) => top + h - (v / yMax) * h;
  const parts = [
    `<text x="${x0 + left + w / 2}" y="20" text-anchor="middle" font-weight="bold">${title}</text>`,
    `<rect x="${x0 + left}" y="${top}" width="${w}" height="${h}" fill="none" stroke="#888"/>`,
  ];
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    const y = py(v).toFixed(1);
    parts.push(
      `<line x1="${x0 + left}" x2="${x0 + left + w}" y1="${y}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${x0 + left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${+v
        .toPrecision(6)}${unit}</text>`,
    );
  }
  const every = Math.max(1, Math.ceil(epochs.length / 12));
  for (const [i, e] of epochs.entries()) {
    if (i % every === 0 || i === epochs.length - 1) {
      parts.push(
        `<text x="${px(e).toFixed(1)}" y="${top + h + 16}" text-anchor="middle">${e}</text>`,
      );
    }
  }
  parts.push(`<text x="${x0 + left + w / 2}" y="${height - 8}" text-anchor="middle">epoch</text>`);
  for (const [k, s] of series.entries()) {
    const points = s.values.map((v, i) => `${px(epochs[i]).toFixed(1)},${py(v).toFixed(1)}`).join(
      " ",
    );
    parts.push(
      `<polyline class="series" fill="none" stroke="${s.colour}" stroke-width="2" points="${points}"/>`,
      ...s.values.map((v, i) =>
        `<circle cx="${px(epochs[i]).toFixed(1)}" cy="${
          py(v).toFixed(1)
        }" r="2.5" fill="${s.colour}"/>`
      ),
      `<text x="${x0 + left + w - 8}" y="${
        top + 16 + 16 * k
      }" text-anchor="end" fill="${s.colour}">${s.label}</text>`,
    );
  }
  return parts.join("\n");
}

/**
 * The SVG of a run's curves.
 *
 * @example
 * ```ts
 * import { plotMetrics } from "./plot.ts";
 * const m = { epoch: 1, lr: 0.01, trainLoss: 0.9, trainAccuracy: 0.7, top1Error: 0.2,
 *   top5Error: 0.01, validationLoss: 0.6, seconds: 60, imagesPerSecond: 100 };
 * console.log(plotMetrics([m, { ...m, epoch: 2, trainLoss: 0.5 }]).startsWith("<svg")); // true
 * ```
 */
export function plotMetrics(metrics: readonly EpochMetrics[]): string {
  if (metrics.length === 0) throw new RangeError("plotMetrics: no epochs to plot");
  const epochs = metrics.map((m) => m.epoch);
  const pick = (f: (m: EpochMetrics) => number) => metrics.map(f);
  const loss = panel(0, "loss", "", epochs, [
    { label: "training", colour: "#1f77b4", values: pick((m) => m.trainLoss) },
    { label: "validation", colour: "#d62728", values: pick((m) => m.validationLoss) },
  ]);
  const error = panel(PANEL.width, "error", "%", epochs, [
    {
      label: "training top-1",
      colour: "#1f77b4",
      values: pick((m) => 100 * (1 - m.trainAccuracy)),
    },
    { label: "validation top-1", colour: "#d62728", values: pick((m) => 100 * m.top1Error) },
    { label: "validation top-5", colour: "#2ca02c", values: pick((m) => 100 * m.top5Error) },
  ]);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${
    2 * PANEL.width
  }" height="${PANEL.height}" ` +
    `font-family="sans-serif" font-size="12">\n<rect width="100%" height="100%" fill="white"/>\n` +
    `${loss}\n${error}\n</svg>\n`;
}
