import {
  historyText,
  overwriteWarning,
  parseShare,
  rolloutSpec,
  rolloutText,
  UsageError,
  type Rollout,
  type RolloutHistory,
  type RolloutState,
} from '@onnx-batch/cli';
import { cliInProcess } from '../helpers/cli';

/** A rollout as the server stores it. */
function rollout(fields: Partial<Rollout> = {}): Rollout {
  return {
    model: 'iris',
    default: null,
    canary: null,
    shadow: null,
    autoRollback: null,
    previousDefault: null,
    revision: 0,
    updatedAt: '',
    ...fields,
  };
}

/** A rollout with every part set, at revision 4. */
const FULL_ROLLOUT = rollout({
  default: '2',
  canary: { version: '3', percent: 10 },
  shadow: { version: '3', percent: 100 },
  autoRollback: { minAgreement: 0.95, minRows: 1000 },
  previousDefault: '2',
  revision: 4,
  updatedAt: '2026-01-01T00:00:00.000Z',
});

describe('cli rollout: what set sends', () => {
  const current = FULL_ROLLOUT;

  it('when one part is given, then the rest of the current rollout is sent as it is', () => {
    expect(rolloutSpec({ shadow: { version: '3', percent: 20 } }, current)).toEqual({
      default: '2',
      canary: { version: '3', percent: 10 },
      shadow: { version: '3', percent: 20 },
      autoRollback: { minAgreement: 0.95, minRows: 1000 },
    });
  });

  it('when --no-… options are given, then those parts are sent as null and the rest kept', () => {
    expect(rolloutSpec({ canary: false, default: false, autoRollback: false }, current)).toEqual({
      default: null,
      canary: null,
      shadow: { version: '3', percent: 100 },
      autoRollback: null,
    });
  });

  it('when a rule limit is given, then it is merged into the current rule', () => {
    expect(rolloutSpec({ maxFailedRowRate: 0.01 }, current).autoRollback).toEqual({
      maxFailedRowRate: 0.01,
      minAgreement: 0.95,
      minRows: 1000,
    });
  });

  it('when --replace is given, then only the parts given are sent (the server clears the rest)', () => {
    expect(rolloutSpec({ replace: true, canary: { version: '3', percent: 5 } }, current)).toEqual({ canary: { version: '3', percent: 5 } });
  });

  it('when --clear is given, then an empty rollout is sent', () => {
    expect(rolloutSpec({ clear: true, autoRollback: true }, current)).toEqual({});
  });

  it('when --force and --reason are given, then both go with the spec (not as rollout parts); --reason alone is sent too', () => {
    expect(rolloutSpec({ replace: true, canary: { version: '3', percent: 5 }, force: true, reason: ' small set ' }, current)).toEqual({
      canary: { version: '3', percent: 5 },
      force: true,
      reason: 'small set',
    });
    expect(rolloutSpec({ clear: true, reason: 'end of test' }, current)).toEqual({ reason: 'end of test' });
  });

  it.each([
    ['nothing to change', {}, /nothing to set/],
    ['--clear with a part', { clear: true, shadow: { version: '3', percent: 1 } }, /--clear removes the whole rollout/],
    ['--no-auto-rollback with a limit', { autoRollback: false, minRows: 5 }, /--no-auto-rollback removes the rule/],
    ['a new rule without --min-rows', { minAgreement: 0.9 }, /--min-rows is needed/],
  ])('EXPECTED FAILURE – when %s, then a usage error says why', (_what, flags, message) => {
    expect(() => rolloutSpec(flags, rollout())).toThrow(UsageError);
    expect(() => rolloutSpec(flags, rollout())).toThrow(message);
  });

  it.each([
    ['3:10', { version: '3', percent: 10 }],
    ['3:12.5%', { version: '3', percent: 12.5 }],
    ['12:100', { version: '12', percent: 100 }],
  ])('when a share is written %s, then it is read as version and percent', (text, share) => {
    expect(parseShare(text)).toEqual(share);
  });

  it.each(['3', '3:', ':10', '3:101', '3:-1', '3:ten'])('EXPECTED FAILURE – when a share is written %s, then it is refused', (text) => {
    expect(() => parseShare(text)).toThrow(/VERSION:PERCENT/);
  });

  it('when the written rollout is the next revision of the one read, then no warning; otherwise the warning names both revisions', () => {
    expect(overwriteWarning('iris', current, rollout({ revision: 5 }))).toBeNull();
    expect(overwriteWarning('iris', current, rollout({ revision: 7 }))).toMatch(
      /changed between reading it \(revision 4\) and setting it \(now 7\)/,
    );
  });
});

describe('cli rollout: what it prints', () => {
  it('when a rollout has a shadow and a canary, then show prints the parts and both reports, null numbers as -', () => {
    const state: RolloutState = {
      model: 'iris',
      servingDefault: '2',
      rollout: FULL_ROLLOUT,
      report: {
        revision: 4,
        since: '2026-01-01T00:00:00.000Z',
        shadow: {
          version: '3',
          rowsCompared: 400,
          agreement: 0.935,
          meanAbsDifference: 0.0412,
          failedRows: { default: 0, shadow: 1 },
          p50MsPerRow: { default: 0.002, shadow: null },
        },
        canary: {
          version: '3',
          percent: 10,
          jobs: { default: 90, canary: 10 },
          rows: { default: 900, canary: 100 },
          failedRowRate: { default: 0, canary: 0.01 },
          p50MsPerRow: { default: 0.002, canary: 0.003 },
          p50JobMs: { default: 40, canary: null },
        },
      },
      gate: {
        version: '3',
        baseline: '2',
        state: 'failed',
        passes: false,
        evaluationId: 'e1',
        primary: {
          metric: 'accuracy',
          better: 'higher',
          candidate: 0.82251,
          baseline: 1,
          difference: -0.17749,
          ci: { low: -0.2158, high: -0.14 },
        },
        detail: 'the latest evaluation … fails',
      },
    };

    const text = rolloutText(state);

    expect(text).toMatch(/^iris: jobs that name no version run on version 2\n/);
    expect(text).toMatch(/^ {2}default +2 \(pinned by the rollout\)$/m);
    expect(text).toMatch(/^ {2}canary +3 on 10 % of jobs that name no version$/m);
    expect(text).toMatch(/^ {2}auto-rollback +roll back on agreement below 0\.95, judged after 1000 rows$/m);
    expect(text).toMatch(/^ {2}rows compared +400$/m);
    expect(text).toMatch(/^ {2}label agreement +93\.50 %$/m);
    expect(text).toMatch(/^ {2}p50 ms per row +0\.002 +-$/m);
    expect(text).toMatch(/^ {2}jobs +90 +10$/m);
    expect(text).toMatch(/^ {2}failed-row rate +0\.00 % +1\.00 %$/m);
    expect(text).toMatch(
      /^ {2}quality gate +failed: accuracy 0\.8225 vs 1 on 2, difference -0\.1775 \[-0\.2158, -0\.14\] \(evaluation e1\)$/m,
    );
  });

  it('when a rollout was never set, then show says the repository default serves and prints no report', () => {
    const text = rolloutText({
      model: 'iris',
      servingDefault: '2',
      rollout: rollout(),
      report: { revision: 0, since: '', shadow: null, canary: null },
      gate: null,
    });

    expect(text).toMatch(/^ {2}default +the repository's \(2\)$/m);
    expect(text).toMatch(/^ {2}revision +0 \(never set\)$/m);
    expect(text).not.toMatch(/shadow 3|canary 3/);
  });

  it('when the history has entries, then each is a line with who, from, to and why', () => {
    const history: RolloutHistory = {
      model: 'iris',
      entries: [
        {
          id: '2-0',
          at: '2026-01-01T00:01:00.000Z',
          action: 'auto-rollback',
          actor: { tenant: 'system', keyId: 'auto-rollback' },
          from: rollout({ default: '2', shadow: { version: '3', percent: 100 }, autoRollback: { minAgreement: 0.99, minRows: 10 } }),
          to: rollout({ default: '2', autoRollback: { minAgreement: 0.99, minRows: 10 } }),
          reason: 'shadow version 3 agreed with the default on 80.00 % of 400 rows (less than minAgreement 0.99)',
          gate: null,
        },
        {
          id: '1-0',
          at: '2026-01-01T00:00:00.000Z',
          action: 'put',
          actor: { tenant: 'ops', keyId: 'abc' },
          from: rollout({ default: '2' }),
          to: rollout({ default: '2', canary: { version: '3', percent: 10 } }),
          reason: 'held-out set too small',
          gate: {
            version: '3',
            baseline: '2',
            state: 'failed',
            passes: false,
            evaluationId: 'e1',
            primary: null,
            forced: true,
            detail: 'accuracy 0.8 on version 3 against 1 on version 2 over 400 rows',
          },
        },
      ],
    };

    const text = historyText(history);

    expect(text.split('\n')[0]).toMatch(/^AT +ACTION +BY +FROM +TO +REASON$/);
    expect(text).toMatch(
      /auto-rollback +system\/auto-rollback +default 2, shadow 3@100%, guarded +default 2, guarded +shadow version 3 agreed/,
    );
    expect(text).toMatch(
      /put +ops\/abc +default 2 +default 2, canary 3@10% +held-out set too small; forced past the quality gate \(failed: accuracy 0\.8/,
    );
    expect(historyText({ model: 'iris', entries: [] })).toBe('iris: the rollout was never changed\n');
  });
});

describe('cli rollout: the command line', () => {
  it.each([
    [['rollout', 'set', 'iris'], /nothing to set/],
    [['rollout', 'set', 'iris', '--canary', '3'], /option '--canary <version:percent>' argument '3' is invalid/],
    [['rollout', 'set', 'iris', '--min-agreement', '2'], /must be a number from 0 to 1/],
    [['rollout', 'history', 'iris', '--limit', '0'], /must be an integer of at least 1/],
    [['rollout', 'set', 'iris', '--canary', '3:10', '--force'], /--force needs --reason/],
    [['rollout', 'set', 'iris', '--canary', '3:10', '--reason', ' '], /--reason must say why/],
    [['evaluate', 'iris', 'three'], /version must be digits/],
    [['evaluate', 'iris', '3', '--file', 'labels.parquet'], /give a \.ndjson, \.jsonl, \.csv or \.json file/],
    [['evaluate', 'iris'], /missing required argument 'version'/],
    [['rollout', 'show'], /missing required argument 'model'/],
    [['rollout'], /Usage: onnx-batch rollout/],
  ])('EXPECTED FAILURE – when %j is run, then exit 2 before anything is sent', async (args, message) => {
    const run = await cliInProcess(...args, ...(args.length > 1 ? ['--url', 'http://127.0.0.1:9'] : []));

    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
  });

  it.each(['show', 'set', 'promote', 'rollback', 'history'])(
    'when rollout %s --help is asked, then it prints usage with the connection options and exits 0',
    async (command) => {
      const run = await cliInProcess('rollout', command, '--help');

      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^Usage: onnx-batch rollout ${command} \\[options\\] <model>`));
      expect(run.stdout).toMatch(/--url <url>/);
    },
  );

  it('when rollout set --help is asked, then it says that PUT replaces the whole rollout and what --replace and --clear do', async () => {
    const run = await cliInProcess('rollout', 'set', '--help');

    expect(run.stdout).toMatch(/replaces the whole rollout/);
    expect(run.stdout).toMatch(/--replace +send only the parts given/);
    expect(run.stdout).toMatch(/--clear +remove the whole rollout/);
  });
});
