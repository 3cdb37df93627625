// Builds the page from elements and text nodes only: event data (SKUs, customer ids, reasons) is
// never parsed as HTML, so a hostile value shows as the characters it is.

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else if (name === 'className') node.className = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/// Empties `node` and fills it with `children` (nulls and falses left out, text as text).
export function replace(node, ...children) {
  return append(clear(node), children);
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

/// A table: `columns` are [header, cell(row) => text or node, className?].
export function table(columns, rows, rowAttributes = () => ({})) {
  return el('div', { className: 'table-wrap' },
    el('table', {},
      el('thead', {}, el('tr', {}, columns.map(([header, , cls]) => el('th', { scope: 'col', className: cls }, header)))),
      el('tbody', {}, rows.map((row) => el('tr', rowAttributes(row), columns.map(([, cell, cls]) => el('td', { className: cls }, cell(row))))))));
}

/// Definition list in a grid of small boxes.
export function facts(pairs) {
  return el('dl', { className: 'grid' }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([label, value]) => el('div', {}, el('dt', {}, label), el('dd', {}, value))));
}

export function money(minor, currency) {
  if (typeof minor !== 'number') return '';
  return `${(minor / 100).toFixed(2)} ${currency ?? ''}`.trim();
}

export function badge(text) {
  return el('span', { className: `badge ${String(text).replace(/[^A-Za-z_]/g, '')}` }, text);
}

/// A `datetime-local` input's value as an ISO 8601 UTC time, or undefined when empty.
export function isoFromLocal(value) {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}
