export type Stoppable = { stop(opts?: { kill?: boolean }): Promise<void> } | { close(): Promise<void> };

/** What every scenario gets from the orchestrator. */
export interface Ctx {
  /** Repetitions for medians (BENCH_ROUNDS, default 3). */
  rounds: number;
  /** Write V8 CPU profiles of Parley servers here (BENCH_PROFILE=1). */
  cpuProfDir?: string;
  /** One line of human summary (stderr). */
  say(line: string): void;
  /** A process to stop if the scenario fails half-way; returns it (track as soon as started). */
  track<T extends Stoppable>(p: T): T;
}

export type ScenarioResult = Record<string, unknown> & { scenario: string };

export type Scenario = (ctx: Ctx) => Promise<ScenarioResult[]>;
