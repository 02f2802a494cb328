import { classifyQuery } from './classify.js';
import type { ClassRule } from '../core/class-rules.js';
import { matchRule } from './rules.js';
import type { QueryContext } from './types.js';

/**
 * The routing context of a chat request, read in one pass over its messages: the last user message,
 * the system prompt, the message count, whether there are images, tools or a response format, and
 * the query class (the first matching `router.classes` rule, else the built-in classifier).
 */

/** The text of a message's content: a string, or its text parts joined by newlines. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  let first = true;
  for (const part of content) {
    if (part && typeof part === 'object' && (part as { type?: unknown }).type === 'text') {
      const text = (part as { text?: unknown }).text;
      if (typeof text === 'string') {
        out = first ? text : `${out}\n${text}`;
        first = false;
      }
    }
  }
  return out;
}

function hasImagePart(content: unknown): boolean {
  if (!Array.isArray(content)) return false;
  for (const part of content) {
    if (part && typeof part === 'object') {
      const type = (part as { type?: unknown }).type;
      if (type === 'image_url' || type === 'input_image' || type === 'image') return true;
    }
  }
  return false;
}

function present(value: unknown): boolean {
  return value !== undefined && value !== null && !(Array.isArray(value) && value.length === 0);
}

/**
 * Builds the context of a request body (already validated: `messages` is a non-empty array of
 * objects with a role). `classHeader` is the request's `x-tracegate-class` header, if any.
 */
export function queryContext(
  body: { messages: readonly Record<string, unknown>[] } & Record<string, unknown>,
  rules: readonly ClassRule[] = [],
  classHeader?: string,
): QueryContext {
  const messages = body.messages;
  let lastUser: unknown = undefined;
  let system = '';
  let images = false;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    const role = m.role;
    if (role === 'user') lastUser = m.content;
    else if (role === 'system' || role === 'developer') {
      const text = contentText(m.content);
      if (text !== '') system = system === '' ? text : `${system}\n${text}`;
    }
    if (!images && typeof m.content !== 'string' && hasImagePart(m.content)) images = true;
  }
  const query = lastUser === undefined ? '' : contentText(lastUser);
  const tools = present(body.tools) || present(body.functions);
  const responseFormat = present(body.response_format);
  const messageCount = messages.length;
  const ruled =
    rules.length > 0
      ? matchRule(rules, { query, system, messageCount, tools, images, responseFormat, metadata: body.metadata, header: classHeader })
      : undefined;
  return { query, system, messageCount, tools, images, responseFormat, queryClass: ruled ?? classifyQuery(query) };
}

/** The text of a Responses API input item's content: a string, or its `input_text` (and `text`) parts joined by newlines. */
function inputContentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  let first = true;
  for (const part of content) {
    if (part && typeof part === 'object') {
      const type = (part as { type?: unknown }).type;
      const text = (part as { text?: unknown }).text;
      if ((type === 'input_text' || type === 'text') && typeof text === 'string') {
        out = first ? text : `${out}\n${text}`;
        first = false;
      }
    }
  }
  return out;
}

/**
 * The routing context of a Responses API request, as `queryContext` reads a chat request's: the
 * query is a string `input`, or the text of the last input item with `role: "user"`; the system
 * prompt is `instructions` and the system and developer items' text; `messageCount` counts the
 * input items (a string input is one); tools are `tools`, the response format `text.format`
 * (other than plain text).
 */
export function responsesContext(
  body: { input?: unknown; instructions?: unknown; tools?: unknown; text?: unknown; metadata?: unknown },
  rules: readonly ClassRule[] = [],
  classHeader?: string,
): QueryContext {
  const input = body.input;
  let query = '';
  let system = typeof body.instructions === 'string' ? body.instructions : '';
  let images = false;
  let messageCount = 0;
  if (typeof input === 'string') {
    query = input;
    messageCount = 1;
  } else if (Array.isArray(input)) {
    messageCount = input.length;
    let lastUser: unknown = undefined;
    for (const item of input) {
      if (typeof item !== 'object' || item === null) continue;
      const { role, content } = item as { role?: unknown; content?: unknown };
      if (role === 'user') lastUser = content;
      else if (role === 'system' || role === 'developer') {
        const text = inputContentText(content);
        if (text !== '') system = system === '' ? text : `${system}\n${text}`;
      }
      if (!images && typeof content !== 'string' && hasImagePart(content)) images = true;
    }
    if (lastUser !== undefined) query = inputContentText(lastUser);
  }
  const tools = present(body.tools);
  const text = body.text;
  const format = typeof text === 'object' && text !== null ? (text as { format?: unknown }).format : undefined;
  const responseFormat = present(format) && !(typeof format === 'object' && (format as { type?: unknown }).type === 'text');
  const ruled =
    rules.length > 0
      ? matchRule(rules, { query, system, messageCount, tools, images, responseFormat, metadata: body.metadata, header: classHeader })
      : undefined;
  return { query, system, messageCount, tools, images, responseFormat, queryClass: ruled ?? classifyQuery(query) };
}

/** The context of a bare prompt (a single user message): what `tracegate explain` and the replay use. */
export function promptContext(
  query: string,
  options: { system?: string; rules?: readonly ClassRule[]; classHeader?: string; queryClass?: string } = {},
): QueryContext {
  const messages: Record<string, unknown>[] = [];
  if (options.system) messages.push({ role: 'system', content: options.system });
  messages.push({ role: 'user', content: query });
  const ctx = queryContext({ messages }, options.rules ?? [], options.classHeader);
  return options.queryClass !== undefined ? { ...ctx, queryClass: options.queryClass } : ctx;
}
