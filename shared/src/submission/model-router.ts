import type { ModelRepository, ModelVersion } from '../model-repository';
import type { RouteArm } from '@onnx-batch/contracts';
import { routeJob, servingDefault } from '../rollouts/rollout';
import type { RolloutStore } from '../rollouts/rollout-store';

/** The version a job runs on, how it was chosen, and the rollout revision that chose it (0: none). */
export interface RoutedModel {
  model: ModelVersion;
  arm: RouteArm;
  revision: number;
}

/**
 * The model a request asked for, before its job has an id. `parsing` reads and validates the
 * rows (a rollout only joins versions with the same features, so any of its versions would do);
 * `choose` picks the version once the job id is known.
 */
export interface ModelSelection {
  readonly parsing: ModelVersion;
  choose(jobId: string): RoutedModel;
}

/** A selection that always answers one version (a client named it, or nothing routes). */
export function pinnedSelection(model: ModelVersion): ModelSelection {
  return { parsing: model, choose: () => ({ model, arm: 'pinned', revision: 0 }) };
}

/**
 * Resolves the versions requests ask for through the model's rollout: a request that names a
 * version gets it; one that names none gets the rollout's default (which a newly dropped version
 * does not displace while the rollout pins one), or a canary for the canary's share of jobs.
 */
export class ModelRouter {
  constructor(
    private readonly repository: ModelRepository,
    private readonly rollouts: RolloutStore,
  ) {}

  /** The version serving jobs that name none: the rollout's default while it exists, else the repository's. */
  async defaultVersion(name: string): Promise<string> {
    const entry = this.repository.entry(name);
    return servingDefault(entry, await this.rollouts.get(name));
  }

  async select(name: string, version?: string): Promise<ModelSelection> {
    if (version !== undefined) return pinnedSelection(this.repository.resolve(name, version));
    const entry = this.repository.entry(name);
    const rollout = await this.rollouts.get(name);
    const defaultVersion = servingDefault(entry, rollout);
    const parsing = this.repository.resolve(name, defaultVersion);
    return {
      parsing,
      choose: (jobId) => {
        const { version: chosen, arm } = routeJob(rollout, jobId, defaultVersion);
        // A canary removed from disk since the rollout was set: its jobs go to the default.
        const model = entry.versions.find((v) => v.manifest.version === chosen) ?? parsing;
        return { model, arm: model === parsing ? 'default' : arm, revision: rollout.revision };
      },
    };
  }
}
