/**
 * A tick that stopped at a safe point because its scheduler is shutting down. Not a failure: the
 * tick is handed back to the queue and resumed (idempotently) by the next scheduler to take it.
 */
export class TickInterrupted extends Error {
  constructor() {
    super('the scheduler is shutting down; the tick is handed back');
    this.name = 'TickInterrupted';
  }
}
