// Building the page: elements and text nodes only. Job errors, feature names and labels are user
// data, so nothing here parses markup (no innerHTML anywhere in the console: eslint refuses it).

export type Child = Node | string | number | null | undefined | false;
type Attributes = Record<string, string | number | boolean | null | undefined | EventListener>;

function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

function setAttributes(element: Element, attributes: Attributes): void {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
}

/** An HTML element: `h('a', { href: '#/jobs' }, 'Jobs')`; `on…` attributes are listeners. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  setAttributes(element, attributes);
  append(element, children);
  return element;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element, built like h(). */
export function svg(tag: string, attributes: Attributes = {}, ...children: Child[]): SVGElement {
  const element: SVGElement = document.createElementNS(SVG_NS, tag);
  setAttributes(element, attributes);
  append(element, children);
  return element;
}

/** How a focused control is found again after a redraw: its id, link target or name and text. */
function focusKey(element: Element): string | null {
  if (element.id) return `#${CSS.escape(element.id)}`;
  const href = element.getAttribute('href');
  if (href) return `${element.tagName.toLowerCase()}[href="${CSS.escape(href)}"]`;
  const name = element.getAttribute('name');
  return name ? `${element.tagName.toLowerCase()}[name="${CSS.escape(name)}"]` : null;
}

/** Replaces what a container shows; a control that had focus inside it has it again afterwards (polls redraw). */
export function show(container: Element, ...children: Child[]): void {
  const focused = document.activeElement;
  const key = focused && focused !== container && container.contains(focused) ? focusKey(focused) : null;
  container.replaceChildren();
  append(container, children);
  if (key) container.querySelector<HTMLElement>(key)?.focus({ preventScroll: true });
}

/** A table with a caption, header cells and rows of cells (a cell may be any node). */
export function table(caption: string, headers: string[], rows: Child[][], attributes: Attributes = {}): HTMLTableElement {
  return h(
    'table',
    attributes,
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...headers.map((name) => h('th', { scope: 'col' }, name)))),
    h('tbody', {}, ...rows.map((cells) => h('tr', {}, ...cells.map((cell) => h('td', {}, cell))))),
  );
}

/** A definition list of label → value pairs. */
export function facts(pairs: [string, Child][]): HTMLDListElement {
  return h('dl', { class: 'facts' }, ...pairs.flatMap(([name, value]) => [h('dt', {}, name), h('dd', {}, value)]));
}

export const count = (n: number): string => n.toLocaleString('en-US');

export function percent(share: number | null, digits = 1): string {
  return share === null ? '—' : `${(share * 100).toFixed(digits)} %`;
}

/** A moment as the reader's local date and time (seconds), with the ISO value as the machine's. */
export function time(iso: string | null): Node {
  if (!iso) return document.createTextNode('—');
  const date = new Date(iso);
  return h('time', { datetime: iso }, Number.isNaN(date.getTime()) ? iso : date.toLocaleString('en-GB', { hour12: false }));
}

export function duration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** A status word as a badge; the word itself carries the meaning (colour only repeats it). */
export function badge(word: string, tone: string = word): HTMLSpanElement {
  return h('span', { class: `badge badge-${tone}` }, word);
}

/** A message for the reader, announced by screen readers. */
export function notice(text: string, tone: 'info' | 'error' = 'info'): HTMLParagraphElement {
  return h('p', { class: `notice notice-${tone}`, role: tone === 'error' ? 'alert' : 'status' }, text);
}

/** A form field's text ('' when absent). */
export function field(data: FormData, name: string): string {
  const value = data.get(name);
  return typeof value === 'string' ? value : '';
}
