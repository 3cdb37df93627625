// Read models: each projection's definition and live version, collection, lag and live projectors;
// an admin starts a rebuild or a verify and watches it here (both run in the api's background).
import { get, post } from '/console/api.js';
import { el, clear, replace, table, badge } from '/console/dom.js';

export async function projectionsPage(main, { who, showError, clearError }) {
  const isAdmin = who.role === 'admin';
  const listing = el('div', { id: 'projections' });
  const details = el('div', { id: 'verification-details' });
  let timer = null;
  let stopped = false;

  async function act(name, action) {
    try {
      await post(`/projections/${encodeURIComponent(name)}/${action}`);
      clearError();
      await refresh(false);
    } catch (error) { showError(error); }
  }

  function rebuildCell(p) {
    if (!p.rebuild) return 'none';
    return el('span', {},
      el('progress', { max: Math.max(p.rebuild.target, 1), value: Math.min(p.rebuild.position, p.rebuild.target), 'aria-label': `rebuild of ${p.name}` }),
      ` ${p.rebuild.position} / ${p.rebuild.target}${p.rebuild.active ? '' : ' (owner gone: the next rebuild takes it over)'}`);
  }

  function verificationCell(p) {
    const v = p.verification;
    if (!v) return 'never (from here)';
    const count = v.differences === undefined || v.differences === null ? '' : ` ${v.differences} differences in ${v.documents} documents`;
    return el('span', { className: 'verification', 'data-projection': p.name }, badge(v.state), count);
  }

  async function refresh(again = true) {
    try {
      const { projections } = await get('/projections');
      clearError();
      replace(listing, table([
        ['Read model', (p) => p.name],
        ['Definition', (p) => `v${p.definitionVersion}`, 'num'],
        ['Live', (p) => (p.liveVersion ? `v${p.liveVersion}` : 'not started'), 'num'],
        ['Collection', (p) => p.collection ?? '', 'wide-only'],
        ['Projectors', (p) => p.projectors, 'num'],
        ['Lag (events)', (p) => (p.lag ? p.lag.events : 'no projector'), 'num'],
        ['Lag (s)', (p) => (p.lag ? p.lag.seconds.toFixed(1) : ''), 'num'],
        ['Rebuild', rebuildCell],
        ['Last verify', verificationCell],
        ...(isAdmin ? [['', (p) => el('span', { className: 'toolbar' },
          el('button', { type: 'button', className: 'secondary', 'data-action': 'rebuild', 'data-projection': p.name, disabled: p.rebuild?.active, onclick: () => act(p.name, 'rebuild') }, 'Rebuild'),
          el('button', { type: 'button', className: 'secondary', 'data-action': 'verify', 'data-projection': p.name, disabled: p.verification?.state === 'running', onclick: () => act(p.name, 'verify') }, 'Verify'))]] : []),
      ], projections, (p) => ({ 'data-projection': p.name })));
      clear(details);
      for (const p of projections) {
        const examples = p.verification?.examples ?? [];
        if (examples.length > 0 || p.verification?.error) {
          details.append(el('h2', {}, `${p.name}: last verify`), el('pre', {}, [p.verification.error, ...examples].filter(Boolean).join('\n')));
        }
      }
    } catch (error) { showError(error); }
    if (again && !stopped) timer = setTimeout(refresh, 2000);
  }

  main.append(el('h1', {}, 'Read models'),
    el('p', { className: 'hint' }, 'Lag: how far the live projectors are behind the newest event appended. ',
      isAdmin ? 'A rebuild replays the log into a new collection while the live one keeps serving, then switches readers over.' : ''),
    listing, details);
  await refresh();
  return () => { stopped = true; clearTimeout(timer); };
}

/// Dead letters: what the consumer groups set aside, newest last, with reason and group; a click
/// shows the message as it came (as text).
export async function deadLettersPage(main, { showError, clearError }) {
  const group = el('input', { id: 'd-group', name: 'group', placeholder: 'every group' });
  const out = el('div', { id: 'dead-letters' });
  const detail = el('div', { id: 'dead-letter-detail' });

  async function load() {
    try {
      const { deadLetters } = await get('/dead-letters', { limit: 200, group: group.value.trim() });
      clearError();
      replace(out, deadLetters.length === 0 ? el('p', {}, 'No dead letters.') : table([
        ['When', (d) => d.deadLetteredAt ?? ''], ['Group', (d) => d.group], ['Reason', (d) => d.reason],
        ['Event', (d) => d.eventType ?? ''], ['Stream', (d) => d.streamId ?? '', 'wide-only'], ['Position', (d) => d.position ?? '', 'num'],
      ], deadLetters.slice().reverse(), (d) => {
        const open = () => replace(detail, el('h2', {}, `Dead letter ${d.partition}/${d.offset}`), el('pre', {}, JSON.stringify(d, null, 2)));
        return { className: 'clickable', tabindex: 0, onclick: open, onkeydown: (e) => { if (e.key === 'Enter') open(); } };
      }));
    } catch (error) { showError(error); }
  }

  main.append(el('h1', {}, 'Dead letters'),
    el('p', { className: 'hint' }, 'Events a consumer group could not handle: set aside with the reason, so the partition goes on. Newest first.'),
    el('form', { className: 'filters', onsubmit: (event) => { event.preventDefault(); load(); } },
      el('label', { for: 'd-group' }, 'Consumer group', group), el('button', { type: 'submit' }, 'Show')),
    out, detail);
  await load();
}
