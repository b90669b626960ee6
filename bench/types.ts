/** What a benchmark returns: one figure per line of the report. */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

/** A benchmark module: `bench/<name>.bench.ts` exporting `run`. */
export interface BenchModule {
  run(): Promise<BenchResult[]>;
}
