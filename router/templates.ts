import * as fs from 'node:fs';
import { errorMessage } from '../core/errors';
import { compileTemplate, type CompiledTemplate } from './render';

/**
 * The template the router renders with. The file (router.template) is re-read on every reconcile,
 * so an edit takes effect within one reconcile interval (by a reload). A new text that does not
 * compile, render, validate or load is remembered as bad and the last good one stays in use: a
 * broken template edit must not stop HAProxy from following a failover. The good text is kept in
 * the router's state file, so a restart does not need the file to be right either.
 */
export interface TemplateChoice {
  readonly text: string;
  readonly fn: CompiledTemplate;
  /** Not yet proven by a successful start or reload. */
  readonly candidate: boolean;
}

export class TemplateManager {
  private good: { text: string; fn: CompiledTemplate } | null = null;
  private bad: { text: string; reason: string } | null = null;
  private problem: string | null = null;

  constructor(
    readonly file: string,
    goodText: string | null,
  ) {
    if (goodText !== null) {
      try {
        this.good = { text: goodText, fn: compileTemplate(goodText) };
      } catch {
        this.good = null;
      }
    }
  }

  /** The template to use now: the file's text when it is new and compiles, else the last good one. */
  select(): TemplateChoice | null {
    this.problem = null;
    let text: string | null = null;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      this.problem = `template ${this.file}: cannot read (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`;
    }
    if (text !== null && this.bad !== null && text !== this.bad.text) this.bad = null;
    if (text !== null && this.good !== null && text === this.good.text)
      return { ...this.good, candidate: false };
    if (text !== null && this.bad === null) {
      try {
        return { text, fn: compileTemplate(text), candidate: true };
      } catch (err) {
        this.reject(text, errorMessage(err));
      }
    }
    if (this.bad !== null) this.problem = `template ${this.file} not used: ${this.bad.reason}`;
    return this.good === null ? null : { ...this.good, candidate: false };
  }

  /** The text was rendered, validated and loaded by HAProxy. */
  promote(choice: TemplateChoice): void {
    this.good = { text: choice.text, fn: choice.fn };
    if (this.bad?.text === choice.text) this.bad = null;
  }

  /** The text failed (render, `haproxy -c`, or reload); it is not tried again until it changes. */
  reject(text: string, reason: string): void {
    this.bad = { text, reason };
    this.problem = `template ${this.file} not used: ${reason}`;
  }

  /** The current template problem, if any (set by select and reject). */
  currentProblem(): string | null {
    return this.problem;
  }

  goodText(): string | null {
    return this.good?.text ?? null;
  }
}
