import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/core/config.js';
import { promptContext, queryContext, responsesContext } from '../../src/routing/context.js';
import type { ClassRule } from '../../src/core/class-rules.js';
import { matchRule } from '../../src/routing/rules.js';
import { ConfigError } from '../../src/core/errors.js';

const models = { a: { baseURL: 'http://127.0.0.1:1/v1', model: 'a' } };

function configWith(classes: unknown) {
  return parseConfig({ models, router: { classes } });
}

function configError(classes: unknown): string {
  try {
    configWith(classes);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('the config was accepted');
}

describe('router.classes in the config', () => {
  it('defaults to no rules, and accepts rules of every kind (and re-parses its own output)', () => {
    expect(parseConfig({ models }).router.classes).toEqual([]);
    const classes = [
      { name: 'support', system: 'customer support' },
      { name: 'agent', tools: true, minMessages: 3 },
      { name: 'vision', images: true },
      { name: 'json', responseFormat: true, user: '^extract' },
      { name: 'search-team', metadata: { team: 'search' } },
      { name: 'batch', header: 'batch' },
      { name: 'short-chat', maxMessages: 2, user: 'hello|hi' },
    ];
    const config = configWith(classes);
    expect(config.router.classes).toEqual(classes);
    expect(parseConfig(config).router.classes).toEqual(classes);
  });

  it('fails the check for an invalid rule, naming the rule', () => {
    expect(configError([{ name: 'support', system: '(unclosed' }])).toMatch(
      /router\.classes\.0: rule "support": "system" is not a valid regular expression/,
    );
    expect(configError([{ name: 'ok', user: 'x' }, { name: 'typo', sytem: 'x' }])).toMatch(
      /router\.classes\.1: rule "typo": unknown key "sytem"/,
    );
    expect(configError([{ name: 'empty' }])).toMatch(/rule "empty": needs at least one condition/);
    expect(configError([{ name: 'bad name!', user: 'x' }])).toMatch(/rule "bad name!": "name" must be 1–64 letters/);
    expect(configError([{ user: 'x' }])).toMatch(/rule #1: "name" must be/);
    expect(configError([{ name: 'n', minMessages: -1 }])).toMatch(/rule "n": "minMessages" must be a non-negative integer/);
    expect(configError([{ name: 'n', tools: 'yes' }])).toMatch(/rule "n": "tools" must be true or false/);
    expect(configError([{ name: 'n', metadata: { team: 3 } }])).toMatch(/rule "n": "metadata.team" must be a string/);
    expect(configError(['support'])).toMatch(/rule #1: must be an object/);
    expect(configError({ name: 'x' })).toMatch(/router\.classes/);
  });
});

describe('matching rules', () => {
  const rules: ClassRule[] = [
    { name: 'batch', header: 'batch' },
    { name: 'support', system: 'customer support' },
    { name: 'agent', tools: true, minMessages: 3 },
    { name: 'vision', images: true },
    { name: 'json', responseFormat: true },
    { name: 'search', metadata: { team: 'search', tier: 'gold' } },
    { name: 'greeting', user: '^(hi|hello)\\b', maxMessages: 1 },
  ];
  const input = {
    query: 'What is the weather like today in the mountains?',
    system: '',
    messageCount: 1,
    tools: false,
    images: false,
    responseFormat: false,
    metadata: undefined,
    header: undefined,
  };

  it('tries rules in order; every condition of a rule must hold', () => {
    expect(matchRule(rules, input)).toBeUndefined();
    expect(matchRule(rules, { ...input, header: 'batch', system: 'Customer Support desk' })).toBe('batch');
    expect(matchRule(rules, { ...input, system: 'You do Customer Support.' })).toBe('support');
    expect(matchRule(rules, { ...input, tools: true })).toBeUndefined();
    expect(matchRule(rules, { ...input, tools: true, messageCount: 3 })).toBe('agent');
    expect(matchRule(rules, { ...input, images: true })).toBe('vision');
    expect(matchRule(rules, { ...input, responseFormat: true })).toBe('json');
    expect(matchRule(rules, { ...input, metadata: { team: 'search' } })).toBeUndefined();
    expect(matchRule(rules, { ...input, metadata: { team: 'search', tier: 'gold', other: 1 } })).toBe('search');
    expect(matchRule(rules, { ...input, metadata: 'search' })).toBeUndefined();
    expect(matchRule(rules, { ...input, query: 'Hello there' })).toBe('greeting');
    expect(matchRule(rules, { ...input, query: 'Hello there', messageCount: 2 })).toBeUndefined();
  });

  it('builds the context of a request in one pass, and the rule names its class', () => {
    const body = {
      model: 'auto',
      messages: [
        { role: 'system', content: 'You are a customer support agent.' },
        { role: 'developer', content: [{ type: 'text', text: 'Be brief.' }] },
        { role: 'user', content: 'first question' },
        { role: 'assistant', content: 'an answer' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in this picture?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
          ],
        },
      ],
      tools: [{ type: 'function', function: { name: 'f' } }],
      response_format: { type: 'json_object' },
      metadata: { team: 'search', tier: 'gold' },
    };
    const context = queryContext(body, rules);
    expect(context).toEqual({
      query: 'What is in this picture?',
      system: 'You are a customer support agent.\nBe brief.',
      messageCount: 5,
      tools: true,
      images: true,
      responseFormat: true,
      queryClass: 'support',
    });
    // Without rules, or when none matches, the built-in classifier names the class.
    expect(queryContext(body).queryClass).toBe('short');
    expect(queryContext(body, rules, 'batch').queryClass).toBe('batch');
    expect(queryContext({ messages: [{ role: 'user', content: 'def f(): pass' }] }, rules).queryClass).toBe('code');
    // Empty tools and null response_format count as absent.
    const plain = queryContext({ messages: [{ role: 'assistant', content: 'x' }], tools: [], response_format: null });
    expect(plain).toMatchObject({ query: '', tools: false, responseFormat: false, images: false, messageCount: 1 });
    expect(promptContext('hi', { system: 'You handle customer support.', rules }).queryClass).toBe('support');
  });

  it('builds the context of a Responses API request: instructions as the system prompt, the last user item as the query', () => {
    const body = {
      model: 'auto',
      instructions: 'You are a customer support agent.',
      input: [
        { role: 'developer', content: [{ type: 'input_text', text: 'Be brief.' }] },
        { role: 'user', content: 'first question' },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'an answer' }] },
        { type: 'function_call_output', call_id: 'c', output: '{}' },
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'What is in' },
            { type: 'input_image', image_url: 'data:image/png;base64,AAAA' },
            { type: 'input_text', text: 'this picture?' },
          ],
        },
        'not an item',
      ],
      tools: [{ type: 'function', name: 'f' }],
      text: { format: { type: 'json_schema', name: 'x', schema: {} } },
      metadata: { team: 'search', tier: 'gold' },
    };
    expect(responsesContext(body, rules)).toEqual({
      query: 'What is in\nthis picture?',
      system: 'You are a customer support agent.\nBe brief.',
      messageCount: 6,
      tools: true,
      images: true,
      responseFormat: true,
      queryClass: 'support',
    });
    expect(responsesContext(body, rules, 'batch').queryClass).toBe('batch');
    // A string input is the query; plain text format and empty tools count as absent.
    expect(responsesContext({ input: 'def f(): pass', text: { format: { type: 'text' } }, tools: [] }, rules)).toEqual({
      query: 'def f(): pass',
      system: '',
      messageCount: 1,
      tools: false,
      images: false,
      responseFormat: false,
      queryClass: 'code',
    });
    expect(responsesContext({})).toMatchObject({ query: '', messageCount: 0, queryClass: queryContext({ messages: [{ role: 'user', content: '' }] }).queryClass });
  });
});
