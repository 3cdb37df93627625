// Sales: orders placed, completed and cancelled per day, and revenue, from the sales_daily read model.
import { get } from '/console/api.js';
import { el, clear, replace, table, money } from '/console/dom.js';

const svgNS = 'http://www.w3.org/2000/svg';
function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(svgNS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function chart(days) {
  const width = 900;
  const height = 260;
  const pad = { left: 40, bottom: 40, top: 10 };
  const series = ['placed', 'completed', 'cancelled'];
  const max = Math.max(1, ...days.flatMap((d) => series.map((s) => d[s])));
  const slot = (width - pad.left) / Math.max(days.length, 1);
  const bar = Math.max(2, (slot - 6) / series.length);
  const scale = (v) => ((height - pad.bottom - pad.top) * v) / max;
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Orders per day: placed, completed, cancelled' });
  root.append(svg('line', { x1: pad.left, y1: height - pad.bottom, x2: width, y2: height - pad.bottom, stroke: '#999' }),
    svg('text', { x: 2, y: pad.top + 10, 'font-size': 12 }, max));
  days.forEach((day, i) => {
    series.forEach((s, j) => {
      const h = scale(day[s]);
      root.append(svg('rect', { class: s, x: pad.left + i * slot + 3 + j * bar, y: height - pad.bottom - h, width: bar - 1, height: h },
        svg('title', {}, `${day.day} ${s}: ${day[s]}`)));
    });
    if (days.length <= 31) root.append(svg('text', { x: pad.left + i * slot + 2, y: height - pad.bottom + 14, 'font-size': 10 }, day.day.slice(5)));
  });
  return root;
}

export async function salesPage(main, { showError, clearError }) {
  const today = new Date().toISOString().slice(0, 10);
  const monthAgo = new Date(Date.now() - 29 * 86400000).toISOString().slice(0, 10);
  const from = el('input', { id: 's-from', type: 'date', value: monthAgo });
  const to = el('input', { id: 's-to', type: 'date', value: today });
  const out = el('div', { id: 'sales' });

  async function load() {
    try {
      const sales = await get('/sales/daily', { from: from.value, to: to.value });
      clearError();
      const currencies = [...new Set(sales.days.flatMap((d) => Object.keys(d.revenue ?? {})))].sort();
      replace(out, 
        el('div', { className: 'legend' }, ['placed', 'completed', 'cancelled'].map((s) => el('span', {}, el('span', { className: `swatch ${s}` }), s))),
        el('div', { className: 'chart' }, chart(sales.days)),
        table([
          ['Day', (d) => d.day], ['Placed', (d) => d.placed, 'num'], ['Completed', (d) => d.completed, 'num'], ['Cancelled', (d) => d.cancelled, 'num'],
          ...currencies.map((c) => [`Revenue ${c}`, (d) => money(d.revenue?.[c] ?? 0, c), 'num']),
        ], sales.days));
    } catch (error) { showError(error); }
  }

  main.append(el('h1', {}, 'Sales per day'),
    el('form', { className: 'filters', onsubmit: (event) => { event.preventDefault(); load(); } },
      el('label', { for: 's-from' }, 'From', from), el('label', { for: 's-to' }, 'To', to), el('button', { type: 'submit' }, 'Show')),
    out);
  await load();
}
