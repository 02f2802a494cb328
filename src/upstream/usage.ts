export interface Usage {
  promptTokens: number | null;
  completionTokens: number | null;
}

function tokenCount(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null;
}

/** Usage from a parsed chat completion (or stream chunk); null when it carries none. */
export function usageOf(parsed: unknown): Usage | null {
  if (typeof parsed !== 'object' || parsed === null) return null;
  const usage = (parsed as { usage?: unknown }).usage;
  if (typeof usage !== 'object' || usage === null) return null;
  const u = usage as { prompt_tokens?: unknown; completion_tokens?: unknown };
  return { promptTokens: tokenCount(u.prompt_tokens), completionTokens: tokenCount(u.completion_tokens) };
}

/** Usage from the JSON text of a completion or chunk; null if absent or not JSON. */
export function readUsage(json: string): Usage | null {
  try {
    return usageOf(JSON.parse(json));
  } catch {
    return null;
  }
}
