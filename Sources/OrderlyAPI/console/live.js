// The live tail (`GET /events/live`, server-sent events) read with fetch so the token goes in the
// Authorization header (EventSource cannot send one). Pause aborts the request; resume sends
// Last-Event-ID, so nothing between the two is missed.
import { get, headers, ApiError } from '/console/api.js';
import { el, clear, replace, table } from '/console/dom.js';

const kept = 200;

export async function livePage(main, { showError, clearError }) {
  const type = el('input', { id: 'l-type', name: 'type', placeholder: 'e.g. OrderPlaced' });
  const prefix = el('input', { id: 'l-prefix', name: 'streamPrefix', placeholder: 'e.g. order-' });
  const toggle = el('button', { type: 'button', id: 'live-toggle' }, 'Pause');
  const state = el('span', { id: 'live-state', className: 'hint' }, 'connecting…');
  const body = el('tbody', { id: 'live-events' });
  const detail = el('div', { id: 'event-detail' });
  let lastId = null;
  let controller = null;
  let running = false;
  let stopped = false;

  function row(event) {
    const open = () => showEvent(event);
    return el('tr', { className: 'clickable', tabindex: 0, onclick: open, onkeydown: (e) => { if (e.key === 'Enter') open(); } },
      el('td', { className: 'num' }, event.position), el('td', {}, event.recordedAt), el('td', {}, event.type), el('td', {}, event.streamId));
  }

  function showEvent(event) {
    replace(detail, el('h2', {}, `Event ${event.position}: ${event.type}`),
      el('pre', { id: 'event-json' }, JSON.stringify(event, null, 2)),
      el('button', { type: 'button', className: 'secondary', onclick: () => showStream(event.streamId) }, `Open stream ${event.streamId}`));
  }

  async function showStream(stream) {
    try {
      const page = await get(`/streams/${encodeURIComponent(stream)}/events`, { limit: 1000 });
      detail.append(el('h2', {}, `Stream ${stream}`), table([
        ['Version', (e) => e.streamVersion, 'num'], ['Position', (e) => e.position, 'num'], ['Time', (e) => e.recordedAt],
        ['Type', (e) => e.type], ['Written by', (e) => e.metadata?.actor ?? ''],
      ], page.events));
    } catch (error) { showError(error); }
  }

  async function follow() {
    running = true;
    toggle.textContent = 'Pause';
    controller = new AbortController();
    const url = new URL('/events/live', location.origin);
    if (type.value.trim()) url.searchParams.set('type', type.value.trim());
    if (prefix.value.trim()) url.searchParams.set('streamPrefix', prefix.value.trim());
    // A new tail starts at the log's end; a resumed one where it left off.
    if (lastId === null) url.searchParams.set('after', 'latest');
    const extra = { Accept: 'text/event-stream' };
    if (lastId !== null) extra['Last-Event-ID'] = lastId;
    try {
      const response = await fetch(url, { headers: headers(extra), signal: controller.signal });
      if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
      clearError();
      state.textContent = 'live';
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\n');
          const id = block.split('\n').find((line) => line.startsWith('id: '));
          if (!data) continue;
          if (id) lastId = id.slice(4);
          body.prepend(row(JSON.parse(data)));
          while (body.children.length > kept) body.lastChild.remove();
        }
      }
      state.textContent = 'the server ended the tail; reconnecting';
    } catch (error) {
      if (error.name === 'AbortError') return;
      showError(error);
      state.textContent = 'disconnected; retrying';
    }
    if (!stopped && running) setTimeout(() => { if (!stopped && running) follow(); }, 1000);
  }

  function pause() {
    running = false;
    controller?.abort();
    toggle.textContent = 'Resume';
    state.textContent = lastId === null ? 'paused' : `paused after position ${lastId}`;
  }

  toggle.addEventListener('click', () => (running ? pause() : follow()));
  const filters = el('form', { className: 'filters', onsubmit: (event) => { event.preventDefault(); pause(); lastId = null; clear(body); follow(); } },
    el('label', { for: 'l-type' }, 'Event type', type), el('label', { for: 'l-prefix' }, 'Stream prefix', prefix),
    el('button', { type: 'submit' }, 'Apply filters'), toggle, state);
  main.append(el('h1', {}, 'Live events'), filters,
    el('div', { className: 'table-wrap' }, el('table', {},
      el('thead', {}, el('tr', {}, ['Position', 'Time', 'Type', 'Stream'].map((h) => el('th', { scope: 'col' }, h)))), body)),
    detail);
  follow();
  return () => { stopped = true; running = false; controller?.abort(); };
}
