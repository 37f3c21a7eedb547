/**
 * Redis keys of schedules. Every key of one tenant's schedules shares the hash tag `{<tenant>}`
 * (as the tenant's other keys do), so a MULTI over them stays on one Redis Cluster slot. The
 * timing itself lives in BullMQ's job scheduler of the `schedules` queue (`<prefix>:schedules:*`).
 *
 *   <prefix>:sched:{<t>}:defs          hash  schedule name → its definition (JSON)
 *   <prefix>:sched:{<t>}:runs:<name>   zset  run id → tick (ms); the newest MAX_RUN_HISTORY are kept
 *   <prefix>:sched:{<t>}:run:<name>    hash  run id → the run's record (JSON)
 *
 * None of them expires: they live as long as the schedule, and DELETE removes them.
 */
export class ScheduleKeys {
  constructor(readonly prefix: string) {}

  definitions(tenant: string): string {
    return `${this.prefix}:sched:{${tenant}}:defs`;
  }

  runIndex(tenant: string, name: string): string {
    return `${this.prefix}:sched:{${tenant}}:runs:${name}`;
  }

  runRecords(tenant: string, name: string): string {
    return `${this.prefix}:sched:{${tenant}}:run:${name}`;
  }
}
