// The console's shell: sign-in, the pages a role may use, and hash routes (#/orders/ID) so the
// browser's back button and links work without the server knowing the pages.
import { claims, signIn, signOut, token, ApiError } from '/console/api.js';
import { el, clear } from '/console/dom.js';
import { ordersPage, orderPage } from '/console/orders.js';
import { livePage } from '/console/live.js';
import { projectionsPage, deadLettersPage } from '/console/projections.js';
import { salesPage } from '/console/sales.js';
import { referencePage } from '/console/reference.js';

const everyone = ['customer', 'staff', 'analyst', 'admin'];
const pages = [
  { path: 'orders', title: 'Orders', roles: ['customer', 'staff', 'admin'], render: ordersPage },
  { path: 'live', title: 'Live events', roles: ['analyst', 'admin'], render: livePage },
  { path: 'projections', title: 'Read models', roles: ['analyst', 'admin'], render: projectionsPage },
  { path: 'dead-letters', title: 'Dead letters', roles: ['analyst', 'admin'], render: deadLettersPage },
  { path: 'sales', title: 'Sales', roles: ['staff', 'analyst', 'admin'], render: salesPage },
  { path: 'api', title: 'API', roles: everyone, render: referencePage },
];

const main = document.getElementById('page');
const statusLine = document.getElementById('status');
let cleanup = null;

export function showError(error) {
  if (error?.name === 'AbortError') return;
  const text = error instanceof ApiError && error.status === 401
    ? `${error.message} — sign in again.`
    : error?.message ?? String(error);
  statusLine.textContent = text;
}

export function clearError() { statusLine.textContent = ''; }

function allowed(role) { return pages.filter((page) => page.roles.includes(role)); }

function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [pathPart, queryPart] = hash.split('?');
  const segments = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  return { segments, query: new URLSearchParams(queryPart ?? '') };
}

function renderNav(who) {
  const nav = clear(document.getElementById('nav'));
  const current = route().segments[0];
  for (const page of who ? allowed(who.role) : []) {
    nav.append(el('a', { href: `#/${page.path}`, 'aria-current': page.path === current ? 'page' : undefined }, page.title));
  }
  const whoBox = clear(document.getElementById('who'));
  if (who) {
    whoBox.append(`${who.subject} (${who.role}) `,
      el('button', { type: 'button', className: 'secondary', onclick: () => { signOut(); location.hash = '#/signin'; render(); } }, 'Sign out'));
  }
}

function signInPage(target) {
  const field = el('textarea', { id: 'token', name: 'token', required: true, autocomplete: 'off', spellcheck: 'false' });
  const form = el('form', {
    onsubmit: (event) => {
      event.preventDefault();
      signIn(field.value);
      if (!claims()) { signOut(); showError('That is not a token (expected three dot-separated parts).'); return; }
      clearError();
      location.hash = '#/';
      render();
    },
  },
  el('label', { for: 'token' }, 'Bearer token'), field,
  el('p', {}, el('button', { type: 'submit', id: 'sign-in' }, 'Sign in')));
  target.append(el('h1', {}, 'Sign in'), form,
    el('p', { className: 'hint' }, 'Paste a token from your identity provider. Running locally? Make one with ',
      el('code', {}, 'orderly token --role staff --subject you'),
      '. It is kept in this tab only (sessionStorage) and sent as the Authorization header.'));
  field.focus();
}

async function render() {
  if (cleanup) { cleanup(); cleanup = null; }
  clearError();
  clear(main);
  const who = token() ? claims() : null;
  renderNav(who);
  const { segments, query } = route();
  if (!who || segments[0] === 'signin') { renderNav(null); signInPage(main); return; }
  const choices = allowed(who.role);
  const page = pages.find((p) => p.path === segments[0]);
  if (!page) { location.replace(`#/${choices[0].path}`); return; }
  if (!page.roles.includes(who.role)) {
    main.append(el('h1', {}, page.title), el('p', {}, `The ${who.role} role may not use this page.`));
    return;
  }
  try {
    const render = page.path === 'orders' && segments[1] ? orderPage : page.render;
    cleanup = (await render(main, { segments, query, who, showError, clearError })) ?? null;
  } catch (error) {
    showError(error);
  }
}

window.addEventListener('hashchange', render);
render();
