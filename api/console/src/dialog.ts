import { h } from './dom.js';

/**
 * Asks before an action that cannot be undone, in a modal <dialog>: focus moves into it, Tab stays
 * in it, Escape closes it (the browser's own handling), and focus returns to what opened it.
 * With `reason`, a required text field is part of the question; its text is the answer.
 */
export function confirmAction(options: { title: string; body: string; action: string; reason?: string }): Promise<string | null> {
  const opener = document.activeElement as HTMLElement | null;
  const titleId = 'confirm-title';
  const field = options.reason ? h('textarea', { id: 'confirm-reason', name: 'reason', required: true, rows: 3, maxlength: 1000 }) : null;
  const form = h(
    'form',
    { method: 'dialog' },
    h('h2', { id: titleId }, options.title),
    h('p', {}, options.body),
    field && options.reason ? h('p', {}, h('label', { for: 'confirm-reason' }, options.reason), h('br'), field) : null,
    h(
      'p',
      { class: 'actions' },
      h('button', { type: 'submit', value: 'confirm', class: 'danger' }, options.action),
      ' ',
      h('button', { type: 'button', value: 'cancel', onclick: () => dialog.close('cancel') }, 'Cancel'),
    ),
  );
  const dialog = h('dialog', { 'aria-labelledby': titleId }, form);
  document.body.appendChild(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      const confirmed = dialog.returnValue === 'confirm';
      dialog.remove();
      opener?.focus();
      resolve(confirmed ? (field?.value.trim() ?? '') : null);
    });
    dialog.showModal();
    (field ?? dialog.querySelector<HTMLButtonElement>('button[value="cancel"]'))?.focus();
  });
}
