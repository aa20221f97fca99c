/**
 * Inline SVG bar charts (layer sizes, storage per repository): horizontal bars, one row per
 * item, drawn on the server, styled by ui.css. Each chart is an image with a title and a
 * description for screen readers (the table next to it holds the same numbers), and every
 * bar has a tooltip (<title>) with its exact value.
 */
import { html, type Html } from './html.js';

export interface Bar {
  label: string;
  value: number;
}

export interface ChartOptions {
  /** Unique on the page: the ids of the chart's title and description derive from it. */
  id: string;
  title: string;
  description: string;
  bars: Bar[];
  format: (value: number) => string;
}

const WIDTH = 760;
const LABEL_WIDTH = 190;
const VALUE_WIDTH = 90;
const ROW = 24;
const BAR = 16;
const MAX_LABEL = 26;

export function barChart(options: ChartOptions): Html {
  const { id, bars } = options;
  const max = Math.max(1, ...bars.map((b) => b.value));
  const span = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
  const height = Math.max(ROW, bars.length * ROW);
  const rows = bars.map((bar, i) => {
    const y = i * ROW;
    const width = bar.value > 0 ? Math.max(1, Math.round((bar.value / max) * span)) : 0;
    const label = bar.label.length > MAX_LABEL ? `${bar.label.slice(0, MAX_LABEL - 1)}…` : bar.label;
    const value = options.format(bar.value);
    return html`<g>
<text class="bar-label" x="${LABEL_WIDTH - 8}" y="${y + ROW / 2 + 4}" text-anchor="end">${label}</text>
<rect class="bar" x="${LABEL_WIDTH}" y="${y + (ROW - BAR) / 2}" width="${width}" height="${BAR}" rx="2"><title>${bar.label}: ${value}</title></rect>
<text class="bar-value" x="${LABEL_WIDTH + width + 6}" y="${y + ROW / 2 + 4}">${value}</text>
</g>`;
  });
  return html`<svg class="chart" role="img" aria-labelledby="${id}-title ${id}-desc" viewBox="0 0 ${WIDTH} ${height}" width="${WIDTH}" height="${height}" xmlns="http://www.w3.org/2000/svg">
<title id="${id}-title">${options.title}</title>
<desc id="${id}-desc">${options.description}</desc>
${rows}
</svg>`;
}
