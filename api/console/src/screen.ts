import type { Role } from './types.js';

/** Who the console acts as (GET /v1/me). */
export interface Me {
  tenant: string;
  roles: Role[];
  keyId: string;
  auth: 'keys' | 'off';
}

/** What a screen is given: where it draws, the route's parts, and repeating work tied to its lifetime. */
export interface Screen {
  me: Me;
  main: HTMLElement;
  /** Path segments after the screen's name: `#/jobs/<id>` → [id]. */
  params: string[];
  query: URLSearchParams;
  /** True until the reader leaves this screen: late answers are then dropped. */
  live(): boolean;
  /**
   * Runs `task` again and again while the tab is visible and the screen is shown, each start at
   * least `minMs` (≥ 2 s) after the last; stops when the task answers false.
   */
  repeat(minMs: number, task: () => Promise<boolean>): void;
  /** Shows the screen again, e.g. after an action changed what it shows. */
  refresh(): void;
}

export const can = (me: Me, role: Role): boolean => me.roles.includes(role);
