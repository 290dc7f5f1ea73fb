import { ParleyError } from '../../../src/client/index.js';
import { h, replace } from '../dom.js';
import { mintDevToken } from '../identity.js';
import type { Shell } from '../shell.js';

/** Sign in by name (a development server mints a token) or with a pasted token. */
export class SignInView {
  readonly #shell: Shell;

  constructor(shell: Shell) {
    this.#shell = shell;
  }

  render(message?: string, askToken = false): void {
    const error = h('p', { class: 'error', id: 'signin-error', role: 'alert' }, message ?? '');
    error.hidden = !message;
    const name = h('input', {
      id: 'signin-name',
      name: 'name',
      autocomplete: 'nickname',
      maxlength: 64,
      required: true,
      placeholder: 'e.g. Alice',
      autofocus: true,
    });
    const token = h('textarea', {
      id: 'signin-token',
      rows: 3,
      placeholder: 'eyJhbGciOi…',
      spellcheck: 'false',
    });
    const tokenBox = h(
      'details',
      { class: 'token-box', open: askToken },
      h('summary', {}, 'I have a token'),
      h(
        'form',
        {
          onsubmit: (e: Event) => {
            e.preventDefault();
            const value = token.value.trim();
            if (!value) return;
            void this.#shell.connect({ mode: 'token', name: '', token: value });
          },
        },
        h('label', { for: 'signin-token' }, 'Token (a JWT from your backend)'),
        token,
        h('button', { id: 'signin-token-submit', type: 'submit' }, 'Connect with token'),
      ),
    );
    const form = h(
      'form',
      {
        class: 'signin-form',
        onsubmit: (e: Event) => {
          e.preventDefault();
          void this.#signInByName(name.value.trim(), error, tokenBox);
        },
      },
      h('label', { for: 'signin-name' }, 'Your name'),
      h(
        'div',
        { class: 'row' },
        name,
        h('button', { id: 'signin-submit', type: 'submit', class: 'primary' }, 'Continue'),
      ),
    );
    replace(
      this.#shell.view,
      h(
        'div',
        { class: 'card signin' },
        h('h1', {}, this.#shell.station?.name ?? 'Parley'),
        h('p', { class: 'muted' }, 'Push-to-talk channels and 1:1 calls, in the browser.'),
        form,
        error,
        tokenBox,
      ),
    );
    name.focus();
  }

  async #signInByName(name: string, error: HTMLElement, tokenBox: HTMLDetailsElement): Promise<void> {
    if (!name) return;
    try {
      const id = await mintDevToken(name);
      if (!id) {
        error.hidden = false;
        error.textContent =
          'This server does not hand out demo tokens (production mode). Paste a token from your backend below.';
        tokenBox.open = true;
        return;
      }
      await this.#shell.connect(id);
    } catch (err) {
      error.hidden = false;
      error.textContent = ParleyError.from(err).reason;
    }
  }
}
