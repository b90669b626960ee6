/**
 * The fake BigQuery's statement emulation (fake-bigquery.ts serves the REST API around it): the
 * query parameters decoded by their declared types, and the few script shapes the warehouse sink
 * sends run on the fake's tables with BigQuery's semantics; anything else fails as `invalidQuery`.
 * See fake-bigquery.ts's header for the shapes. Pure over the `tables` map it is given.
 */

export type Row = Record<string, unknown>;

export interface TableState {
  resource: Row & {
    schema?: { fields: Array<{ name: string; type: string; mode?: string }> };
    view?: { query: string };
  };
  rows: Row[];
}

/** What a script's last SELECT returned (undefined: none). */
export type ScriptResult = { schema: Array<{ name: string; type: string }>; rows: Row[] } | undefined;

export class JobError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

type ParamType = { type: string; arrayType?: ParamType; structTypes?: Array<{ name: string; type: ParamType }> };
type ParamValue = { value?: string; arrayValues?: ParamValue[]; structValues?: Record<string, ParamValue> };
type Param = { type: ParamType; value: unknown };

function decode(t: ParamType, v: ParamValue | undefined): unknown {
  if (t.type === 'ARRAY') return (v?.arrayValues ?? []).map((x) => decode(t.arrayType as ParamType, x));
  if (t.type === 'STRUCT')
    return Object.fromEntries((t.structTypes ?? []).map((f) => [f.name, decode(f.type, v?.structValues?.[f.name])]));
  const s = v?.value;
  if (s === undefined || s === null) return null;
  const bad = (what: string) => new JobError('invalidQuery', `Invalid ${what} value in query parameter: ${s}`);
  switch (t.type) {
    case 'INT64':
      if (!/^-?\d{1,19}$/.test(s)) throw bad('INT64');
      return s;
    case 'FLOAT64':
      if (!Number.isFinite(Number(s))) throw bad('FLOAT64');
      return Number(s);
    case 'TIMESTAMP':
      if (!Number.isFinite(Date.parse(s))) throw bad('TIMESTAMP');
      return s;
    case 'DATE':
      if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) throw bad('DATE');
      return s;
    case 'JSON':
      try {
        JSON.parse(s);
      } catch {
        throw bad('JSON');
      }
      return s;
    default:
      return s;
  }
}

/** Table field type of a parameter type (INTEGER/FLOAT are legacy aliases). */
const norm = (t: string) => ({ INTEGER: 'INT64', FLOAT: 'FLOAT64' })[t] ?? t;

/** The job's `queryParameters`, decoded (a malformed value fails the job as BigQuery's would). */
export function decodeParams(list: unknown): Map<string, Param> {
  const params = new Map<string, Param>();
  for (const p of (list ?? []) as Array<{ name: string; parameterType: ParamType; parameterValue: ParamValue }>)
    params.set(p.name, { type: p.parameterType, value: decode(p.parameterType, p.parameterValue) });
  return params;
}

export function runScript(script: string, params: Map<string, Param>, tables: Map<string, TableState>): ScriptResult {
  const offsets =
    /^SELECT kafka_partition, CAST\(next_offset AS STRING\) AS next_offset FROM `([^`]+)` WHERE topic = @topic$/.exec(
      script.trim(),
    );
  if (offsets) {
    const rows = tableOf(tables, offsets[1] as string).rows.filter((r) => r.topic === params.get('topic')?.value);
    return {
      schema: [
        { name: 'kafka_partition', type: 'INT64' },
        { name: 'next_offset', type: 'STRING' },
      ],
      rows,
    };
  }
  const decisions =
    /^SELECT kafka_partition, CAST\(next_offset AS STRING\) AS next_offset, fact_stream FROM `([^`]+)`\nWHERE topic = @topic\nQUALIFY DENSE_RANK\(\) OVER \(PARTITION BY kafka_partition ORDER BY next_offset DESC\) <= (\d+)$/.exec(
      script.trim(),
    );
  if (decisions) {
    // The Storage Write API backend's commit-log read: each partition's rows of its `rank` highest next offsets.
    const rows = tableOf(tables, decisions[1] as string).rows.filter((r) => r.topic === params.get('topic')?.value);
    const ranks = new Map<string, bigint[]>();
    for (const r of rows) {
      const p = String(r.kafka_partition);
      const offsets = ranks.get(p) ?? [];
      if (!offsets.includes(BigInt(String(r.next_offset)))) offsets.push(BigInt(String(r.next_offset)));
      ranks.set(
        p,
        offsets.sort((a, b) => (a > b ? -1 : a < b ? 1 : 0)),
      );
    }
    const rank = Number(decisions[2]);
    return {
      schema: [
        { name: 'kafka_partition', type: 'INT64' },
        { name: 'next_offset', type: 'STRING' },
        { name: 'fact_stream', type: 'STRING' },
      ],
      rows: rows.filter((r) =>
        (ranks.get(String(r.kafka_partition)) ?? []).slice(0, rank).includes(BigInt(String(r.next_offset))),
      ),
    };
  }
  const truncate = /^DELETE FROM `([^`]+)` WHERE TRUE$/.exec(script.trim());
  if (truncate) {
    tableOf(tables, truncate[1] as string).rows = [];
    return { schema: [], rows: [] };
  }
  const vars = new Map<string, number>();
  let working: Map<string, Row[]> | null = null;
  let rowCount = 0;
  let result: ScriptResult;
  for (const stmt of script
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter(Boolean)) {
    let m: RegExpExecArray | null;
    if ((m = /^DECLARE (\w+) INT64 DEFAULT 0$/.exec(stmt))) vars.set(m[1] as string, 0);
    else if (stmt === 'BEGIN TRANSACTION')
      working = new Map([...tables].map(([k, t]) => [k, t.rows.map((r) => ({ ...r }))]));
    else if ((m = /^SET (\w+) = @@row_count$/.exec(stmt))) vars.set(m[1] as string, rowCount);
    else if (stmt.startsWith('MERGE ')) rowCount = merge(stmt, params, working, tables);
    else if (stmt === 'COMMIT TRANSACTION' && working) {
      for (const [k, rows] of working) {
        const t = tables.get(k);
        if (t) t.rows = rows;
      }
      working = null;
    } else if ((m = /^SELECT (\w+)$/.exec(stmt)) && vars.has(m[1] as string)) {
      result = {
        schema: [{ name: m[1] as string, type: 'INT64' }],
        rows: [{ [m[1] as string]: vars.get(m[1] as string) }],
      };
    } else
      throw new JobError('invalidQuery', `the fake BigQuery does not emulate this statement: ${stmt.slice(0, 120)}`);
  }
  // A transaction still open when the script ends is rolled back (its working copy is dropped).
  return result;
}

function tableOf(tables: Map<string, TableState>, full: string): TableState {
  const [, dataset, name] = full.split('.');
  const t = tables.get(`${dataset}.${name}`);
  if (!t || t.resource.view) throw new JobError('notFound', `Not found: Table ${full}`);
  return t;
}

/** Emulates the MERGE shape described above on `working` (or the committed tables). */
function merge(
  stmt: string,
  params: Map<string, Param>,
  working: Map<string, Row[]> | null,
  tables: Map<string, TableState>,
): number {
  const m = /^MERGE `([^`]+)` AS t\s+USING \(SELECT \* FROM UNNEST\(@(\w+)\)\) AS s\s+ON (.+?)\s+(WHEN [\s\S]+)$/s.exec(
    stmt,
  );
  if (!m) throw new JobError('invalidQuery', `the fake BigQuery does not emulate this MERGE: ${stmt.slice(0, 120)}`);
  const [, full, param, on, whens] = m as unknown as [string, string, string, string, string];
  const table = tableOf(tables, full);
  const key = `${full.split('.')[1]}.${full.split('.')[2]}`;
  const rows = working?.get(key) ?? table.rows;
  const source = (params.get(param)?.value ?? []) as Row[];
  const sourceTypes = new Map((params.get(param)?.type.arrayType?.structTypes ?? []).map((f) => [f.name, f.type]));
  const keys = [...on.matchAll(/t\.(\w+) = s\.(\w+)/g)].map((k) => [k[1], k[2]] as [string, string]);
  const range = /t\.(\w+) BETWEEN @(\w+) AND @(\w+)/.exec(on);
  const matched = /WHEN MATCHED(?: AND s\.(\w+) >= t\.(\w+))? THEN UPDATE SET ([\s\S]+?)(?=\s+WHEN NOT MATCHED|$)/.exec(
    whens,
  );
  const insert = /WHEN NOT MATCHED THEN INSERT \(([^)]+)\) VALUES \(([\s\S]+)\)$/.exec(whens);
  const fields = new Map((table.resource.schema?.fields ?? []).map((f) => [f.name, f]));
  /** [value, its type] of an expression: `s.<field>` (typed by the parameter) or CURRENT_TIMESTAMP(). */
  const valueOf = (expr: string, s: Row): [unknown, ParamType] => {
    const e = expr.trim().replace(/`/g, '');
    if (e === 'CURRENT_TIMESTAMP()') return [new Date().toISOString(), { type: 'TIMESTAMP' }];
    const ref = /^s\.(\w+)$/.exec(e);
    const type = ref ? sourceTypes.get(ref[1] as string) : undefined;
    if (!ref || !type) throw new JobError('invalidQuery', `Unrecognized name: ${e}`);
    return [s[ref[1] as string], type];
  };
  const assign = (target: Row, column: string, [value, type]: [unknown, ParamType]) => {
    const f = fields.get(column);
    if (!f) throw new JobError('invalidQuery', `Column ${column} is not present in table ${full}`);
    const want = f.mode === 'REPEATED' ? `ARRAY<${norm(f.type)}>` : norm(f.type);
    const got = type.type === 'ARRAY' ? `ARRAY<${type.arrayType?.type}>` : type.type;
    if (want !== got)
      throw new JobError(
        'invalidQuery',
        `Value of type ${got} cannot be assigned to ${column}, which has type ${want}`,
      );
    if (f.mode === 'REQUIRED' && (value === null || value === undefined))
      throw new JobError('invalid', `Required field ${column} cannot be null`);
    target[column] = value;
  };
  let affected = 0;
  for (const s of source) {
    const lo = range ? params.get(range[2] as string)?.value : undefined;
    const hi = range ? params.get(range[3] as string)?.value : undefined;
    const hits = rows.filter(
      (t) =>
        keys.every(([tk, sk]) => String(t[tk]) === String(s[sk])) &&
        (!range || (String(t[range[1] as string]) >= String(lo) && String(t[range[1] as string]) <= String(hi))),
    );
    if (hits.length > 0 && matched) {
      const [, sv, tv, sets] = matched;
      for (const t of hits) {
        if (sv && tv && !(BigInt(String(s[sv])) >= BigInt(String(t[tv])))) continue;
        for (const a of (sets as string).split(/,\s*/)) {
          const [col, expr] = a.split(/\s*=\s*/) as [string, string];
          assign(t, col.replace(/`/g, ''), valueOf(expr, s));
        }
        affected++;
      }
    } else if (hits.length === 0 && insert) {
      const cols = (insert[1] as string).split(',').map((c) => c.trim().replace(/`/g, ''));
      const exprs = (insert[2] as string).split(/,\s*/);
      const row: Row = {};
      cols.forEach((c, i) => assign(row, c, valueOf(exprs[i] ?? '', s)));
      for (const f of fields.values())
        if (f.mode === 'REQUIRED' && !(f.name in row))
          throw new JobError('invalid', `Required field ${f.name} is missing`);
      rows.push(row);
      affected++;
    }
  }
  return affected;
}
