// The OpenAPI document (`/openapi.json`) as a readable reference: every route with its roles,
// parameters, body and answers. A small renderer of our own: nothing is fetched from elsewhere.
import { el, table } from '/console/dom.js';

function refName(schema) {
  if (!schema) return '';
  if (schema.$ref) return schema.$ref.split('/').at(-1);
  if (schema.type === 'array') return `array of ${refName(schema.items)}`;
  return schema.type ?? '';
}

function resolve(document, item) {
  if (!item?.$ref) return item;
  return item.$ref.split('/').slice(1).reduce((node, key) => node?.[key], document);
}

export async function referencePage(main, { showError }) {
  let document;
  try {
    const response = await fetch('/openapi.json');
    document = await response.json();
  } catch (error) { showError(error); return; }
  main.append(el('h1', {}, `${document.info?.title ?? 'API'} ${document.info?.version ?? ''}`),
    el('p', {}, document.info?.description ?? ''),
    el('p', { className: 'hint' }, 'Every route takes a bearer token in the Authorization header; errors are application/problem+json with a stable type.'));
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const [method, operation] of Object.entries(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const parameters = (operation.parameters ?? []).map((p) => resolve(document, p));
      const body = operation.requestBody?.content?.['application/json']?.schema;
      const responses = Object.entries(operation.responses ?? {}).map(([code, r]) => ({ code, ...resolve(document, r) }));
      main.append(el('details', { className: 'op' },
        el('summary', {}, el('span', { className: `method ${method}` }, method.toUpperCase()), ' ', el('code', {}, path), ' — ', operation.summary ?? ''),
        el('div', { className: 'body' },
          operation.description ? el('p', {}, operation.description) : null,
          parameters.length ? table([
            ['Parameter', (p) => p.name], ['In', (p) => p.in], ['Required', (p) => (p.required ? 'yes' : 'no')],
            ['Type', (p) => refName(p.schema)], ['Description', (p) => p.description ?? ''],
          ], parameters) : null,
          body ? el('p', {}, 'Body: ', el('code', {}, refName(body))) : null,
          table([['Answer', (r) => r.code], ['Description', (r) => r.description ?? '']], responses))));
    }
  }
}
