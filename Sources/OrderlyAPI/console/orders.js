// Orders: search the orders read model by customer, status and time, page by the API's cursor;
// one order with its lines, payment and its saga timeline across its streams, as of any moment.
import { get, post } from '/console/api.js';
import { el, clear, replace, table, facts, money, badge, isoFromLocal } from '/console/dom.js';

const statuses = ['', 'PLACED', 'STOCK_RESERVED', 'PAID', 'COMPLETED', 'CANCELLED'];
const terminal = new Set(['COMPLETED', 'CANCELLED']);

export async function ordersPage(main, { query, who, showError, clearError }) {
  const isCustomer = who.role === 'customer';
  const customer = el('input', { id: 'f-customer', name: 'customerId', value: query.get('customerId') ?? '', maxlength: 64 });
  const status = el('select', { id: 'f-status', name: 'status' },
    statuses.map((s) => el('option', { value: s, selected: s === (query.get('status') ?? '') }, s || 'any')));
  const from = el('input', { id: 'f-from', name: 'from', type: 'datetime-local' });
  const to = el('input', { id: 'f-to', name: 'to', type: 'datetime-local' });
  const results = el('div', { id: 'order-results' });
  let cursors = [];

  async function load(cursor) {
    clearError();
    try {
      const page = await get('/orders', {
        customerId: isCustomer ? undefined : customer.value.trim(), status: status.value,
        from: isoFromLocal(from.value), to: isoFromLocal(to.value), limit: 25, cursor,
      });
      replace(results, 
        page.items.length === 0 ? el('p', {}, 'No orders match.') : table([
          ['Order', (o) => el('a', { href: `#/orders/${encodeURIComponent(o.orderId)}`, className: 'order-link' }, o.orderId)],
          ['Customer', (o) => o.customerId],
          ['Status', (o) => badge(o.status)],
          ['Total', (o) => money(o.total, o.currency), 'num'],
          ['Placed', (o) => o.placedAt, 'wide-only'],
        ], page.items),
        el('p', { className: 'toolbar' },
          cursors.length > 0 ? el('button', { type: 'button', className: 'secondary', onclick: () => { cursors.pop(); load(cursors.at(-1)); } }, 'Previous page') : null,
          page.nextCursor ? el('button', { type: 'button', className: 'secondary', id: 'next-page', onclick: () => { cursors.push(page.nextCursor); load(page.nextCursor); } }, 'Next page') : null));
    } catch (error) {
      showError(error);
    }
  }

  const form = el('form', { className: 'filters', role: 'search', onsubmit: (event) => { event.preventDefault(); cursors = []; load(); } },
    isCustomer ? null : el('label', { for: 'f-customer' }, 'Customer', customer),
    el('label', { for: 'f-status' }, 'Status', status),
    el('label', { for: 'f-from' }, 'Placed from', from),
    el('label', { for: 'f-to' }, 'Placed before', to),
    el('button', { type: 'submit', id: 'search' }, 'Search'));
  main.append(el('h1', {}, isCustomer ? 'My orders' : 'Orders'), form, results);
  await load();
}

/// What caused an event: the saga's own event it reacted to (type and position) when it is one of
/// the order's, else the id (a command's request).
function causeOf(entry, events) {
  if (!entry.causationId) return '';
  const cause = events.find((e) => e.eventId === entry.causationId);
  return cause ? `${cause.type} (${cause.position})` : entry.causationId;
}

export async function orderPage(main, { segments, who, showError, clearError }) {
  const id = segments[1];
  const seesHistory = ['staff', 'analyst', 'admin'].includes(who.role);
  const mayCancel = ['customer', 'admin'].includes(who.role);
  const summary = el('div', { id: 'order-summary' });
  const timeline = el('div', { id: 'timeline' });
  const asOfInput = el('input', { id: 'as-of', type: 'datetime-local', step: 1 });
  let asOf;
  let timer = null;
  let stopped = false;

  async function refresh() {
    try {
      const order = await get(`/orders/${encodeURIComponent(id)}`);
      clearError();
      showSummary(order);
      if (seesHistory) showHistory(await get(`/orders/${encodeURIComponent(id)}/history`, { asOf }));
      else showTimeline(order.timeline ?? []);
      // Follow an order in flight until its saga ends.
      if (!stopped && !terminal.has(order.status)) timer = setTimeout(refresh, 1000);
    } catch (error) {
      showError(error);
      if (!stopped && error.status === 404) timer = setTimeout(refresh, 1000);
    }
  }

  function showSummary(order) {
    replace(summary, 
      el('h1', {}, 'Order ', el('span', { id: 'order-id' }, order.orderId), ' ', el('span', { id: 'order-status' }, badge(order.status))),
      facts([
        ['Customer', order.customerId], ['Total', money(order.total, order.currency)], ['Placed', order.placedAt],
        ['Updated', order.updatedAt],
        ['Payment', order.payment ? `${order.payment.status}${order.payment.reason ? ` (${order.payment.reason})` : ''}` : 'not requested yet'],
        ['Cancellation reason', order.cancellationReason], ['Customer notified of', (order.notified ?? []).join(', ')],
      ]),
      el('h2', {}, 'Lines'),
      table([
        ['SKU', (l) => l.sku], ['Quantity', (l) => l.quantity, 'num'], ['Unit price', (l) => money(l.unitPrice, order.currency), 'num'],
        ['Line total', (l) => money(l.unitPrice * l.quantity, order.currency), 'num'],
      ], order.lines),
      mayCancel && !terminal.has(order.status)
        ? el('p', {}, el('button', { type: 'button', className: 'danger', id: 'cancel', onclick: cancel }, 'Cancel this order')) : null);
  }

  async function cancel() {
    if (!confirm(`Cancel order ${id}?`)) return;
    try {
      await post(`/orders/${encodeURIComponent(id)}/cancel`);
      clearError();
    } catch (error) {
      showError(error);
    }
  }

  function showTimeline(entries) {
    replace(timeline, el('h2', {}, 'Timeline'),
      table([['Time', (e) => e.at], ['Event', (e) => e.type], ['Position', (e) => e.position, 'num']], entries));
  }

  function showHistory(history) {
    const state = history.state;
    replace(timeline, 
      el('h2', {}, 'Saga timeline'),
      el('form', { className: 'toolbar', onsubmit: (event) => { event.preventDefault(); asOf = isoFromLocal(asOfInput.value); clearTimeout(timer); refresh(); } },
        el('label', { for: 'as-of' }, 'State as of (your local time)', asOfInput),
        el('button', { type: 'submit', id: 'show-as-of' }, 'Show'),
        asOf ? el('button', { type: 'button', className: 'secondary', onclick: () => { asOf = undefined; asOfInput.value = ''; refresh(); } }, 'Now') : null),
      history.asOf
        ? el('div', { id: 'as-of-state' }, el('p', {}, `As of ${history.asOf}: `, state ? badge(state.status) : 'not placed yet'),
          state ? facts([
            ['Total', money(state.total, state.currency)],
            ['Payment', state.payment ? `${state.payment.status}${state.payment.reason ? ` (${state.payment.reason})` : ''}` : 'not requested yet'],
            ['Cancellation reason', state.cancellationReason], ['Customer notified of', (state.notified ?? []).join(', ')],
            ['Events folded in', history.events.filter((e) => e.applied).length],
          ]) : null)
        : null,
      table([
        ['Time', (e) => e.recordedAt], ['Event', (e) => e.type], ['Stream', (e) => e.stream],
        ['Position', (e) => e.position, 'num'], ['Written by', (e) => e.actor ?? ''],
        ['Caused by', (e) => causeOf(e, history.events), 'wide-only'],
      ], history.events, (e) => ({ className: e.applied ? 'timeline-row' : 'timeline-row not-applied' })));
  }

  main.append(el('p', {}, el('a', { href: '#/orders' }, '← Orders')), summary, timeline);
  await refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
