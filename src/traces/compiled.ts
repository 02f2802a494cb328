/**
 * Functions built once, when a module loads, from the description of a trace (src/traces/trace-columns.ts),
 * for the code that runs once per trace: the insert path, the row mapping, the export. They are the
 * code that would be written out field by field; a loop over the columns is not as fast (V8 builds
 * an object key by key far more slowly than from a literal, and binds a statement's arguments from
 * an array more slowly than from a call's).
 */

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** A field or column name as source text: only an identifier is ever compiled. */
function name(key: string): string {
  if (!IDENTIFIER.test(key)) throw new Error(`not an identifier: ${JSON.stringify(key)}`);
  return key;
}

/** One value of a compiled function: the source's key, the target's key, and how it is converted. */
export interface CompiledValue {
  from: string;
  to: string;
  /** A bool: 0 or 1 in SQLite, true or false in a record (from either engine's row). */
  boolean?: 'toNumber' | 'toBoolean';
  /** The bool may be null (a nullable column): null stays null. */
  nullable?: boolean;
  /** Passed through the function's `convert` argument (compileTuple). */
  convert?: boolean;
}

function value(source: string, v: CompiledValue): string {
  const read = `${source}.${name(v.from)}`;
  if (v.boolean !== undefined && v.nullable) {
    return v.boolean === 'toNumber' ? `(${read} == null ? null : ${read} ? 1 : 0)` : `(${read} == null ? null : ${read} === true || ${read} === 1)`;
  }
  if (v.boolean === 'toNumber') return `(${read} ? 1 : 0)`;
  if (v.boolean === 'toBoolean') return `(${read} === true || ${read} === 1)`;
  if (v.convert) return `convert(${read})`;
  return read;
}

/** `(source) => ({ to: source.from, … })`: a new object with these keys, in this order. */
export function compileObject<From, To>(values: readonly CompiledValue[]): (source: From) => To {
  const body = `return { ${values.map((v) => `${name(v.to)}: ${value('s', v)}`).join(', ')} };`;
  return new Function('s', body) as (source: From) => To;
}

/** `(source, convert) => [source.from, convert(source.from), …]`: these values in an array, in order. */
export function compileTuple<From>(values: readonly Omit<CompiledValue, 'to'>[]): (source: From, convert: (value: never) => unknown) => unknown[] {
  const body = `return [${values.map((v) => value('s', { ...v, to: v.from })).join(', ')}];`;
  return new Function('s', 'convert', body) as (source: From, convert: (value: never) => unknown) => unknown[];
}

/** `(statement, source) => statement.run(source.from, …)`: runs a statement with these values as its arguments, in order. */
export function compileRun<Statement extends { run(...params: unknown[]): Result }, From, Result>(
  values: readonly Omit<CompiledValue, 'to'>[],
): (statement: Statement, source: From) => Result {
  const body = `return statement.run(${values.map((v) => value('s', { ...v, to: v.from })).join(', ')});`;
  return new Function('statement', 's', body) as (statement: Statement, source: From) => Result;
}

/** `(source) => source.from === value && …`: whether the source has these values (each a string or null). */
export function compileEquals<From>(values: readonly { from: string; equals: string | null }[]): (source: From) => boolean {
  const body = `return ${values.map((v) => `s.${name(v.from)} === ${JSON.stringify(v.equals)}`).join(' && ') || 'true'};`;
  return new Function('s', body) as (source: From) => boolean;
}
