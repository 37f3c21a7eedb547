import { Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX, type StorageGuard } from '@onnx-batch/shared';

/**
 * Redis memory as Prometheus gauges, from the StorageGuard's last check (at most
 * REDIS_MEMORY_CHECK_INTERVAL_MS old): the same on every API replica, so they aggregate with max.
 * deploy/prometheus/alerts.yml fires on the ratio before it reaches the watermark, where new jobs
 * start being refused.
 */
export function registerStorageGauges(registry: Registry, storage: StorageGuard): void {
  const gauge = (name: string, help: string, read: () => number): void => {
    const g: Gauge = new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      registers: [registry],
      aggregator: 'max',
      collect: () => {
        if (storage.state.checkedAt === null) g.reset();
        else g.set(read());
      },
    });
  };
  gauge(
    'redis_memory_ratio',
    "The fullest Redis server's used memory as a share of its maxmemory (0: no maxmemory).",
    () => storage.state.memoryRatio,
  );
  gauge(
    'redis_memory_high_watermark',
    'REDIS_MEMORY_HIGH_WATERMARK: the share of maxmemory from which new jobs are refused (507).',
    () => storage.settings.highWatermark,
  );
  gauge(
    'redis_evicting_servers',
    'Redis servers written to whose maxmemory-policy is not noeviction (they may evict accepted jobs; new jobs are refused).',
    () => storage.state.evicting.length,
  );
}
