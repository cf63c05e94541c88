/**
 * The flow samples never drift from the contract: every Logic Apps workflow parses and is wired
 * up (references, connection, schema copy), and every job in samples/curl.md and
 * samples/power-automate.md passes the HTTP API's own admission (admitJobs), as does the
 * job each workflow builds once its expressions have values.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import { describe, expect, it } from 'vitest';
import { parseJob } from '../../src/core/job';
import { admitJobs } from '../../src/core/admission';
import { MAX_JOBS_PER_REQUEST } from '../../src/flows/notifyApi';

const root = path.resolve(__dirname, '../..');
const read = (file: string): string => readFileSync(path.join(root, file), 'utf8');
const jobSchema = JSON.parse(read('schemas/job.schema.json')) as object;
const validateSchema = new Ajv({ allErrors: true, strict: false, validateFormats: false }).compile(jobSchema);
const now = new Date();
let counter = 0;
const newId = (): string => `generated-${(counter += 1)}`;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Gives workflow expressions example values: `@{…}` inside a string, or a whole `@…` string. */
function concretize(value: unknown): unknown {
  if (typeof value === 'string') {
    if (value.startsWith('@') && !value.startsWith('@@') && !value.startsWith('@{')) return 'example-value';
    return value.replace(/@\{[^}]*\}/g, 'x1');
  }
  if (Array.isArray(value)) return value.map(concretize);
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, concretize(v)]));
  return value;
}

function expectValidSubmission(body: unknown, where: string): void {
  const result = admitJobs(body, { now, newId, maxJobs: MAX_JOBS_PER_REQUEST });
  expect('problems' in result ? result.problems : [], where).toEqual([]);
}

// ---- Logic Apps ------------------------------------------------------------------------------

const logicAppsDir = path.join(root, 'samples/logic-apps');
const workflowFiles = readdirSync(logicAppsDir).filter((f) => f.endsWith('.json'));

interface Workflow {
  definition: {
    $schema: string;
    contentVersion: string;
    parameters: Json;
    triggers: Json;
    actions: Record<string, Json>;
    outputs?: Json;
  };
  parameters?: Json;
}

const workflow = (file: string): Workflow =>
  JSON.parse(readFileSync(path.join(logicAppsDir, file), 'utf8')) as Workflow;

/** Every action in the definition, nested ones (If, Scope, loops) included, with its siblings. */
function allActions(actions: Record<string, Json>, out: { name: string; action: Json; siblings: string[] }[] = []) {
  const names = Object.keys(actions);
  for (const [name, action] of Object.entries(actions)) {
    out.push({ name, action, siblings: names });
    if (isObject(action.actions)) allActions(action.actions as Record<string, Json>, out);
    if (isObject(action.else) && isObject(action.else.actions))
      allActions(action.else.actions as Record<string, Json>, out);
  }
  return out;
}

function stringsIn(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) value.forEach((v) => stringsIn(v, out));
  else if (isObject(value)) Object.values(value).forEach((v) => stringsIn(v, out));
  return out;
}

describe('samples/logic-apps', () => {
  it('has the two workflows', () => {
    expect(workflowFiles.sort()).toEqual(['http-send-and-poll.workflow.json', 'queue-send.workflow.json']);
  });

  it.each(workflowFiles)('%s is a Consumption workflow whose references all resolve', (file) => {
    const wf = workflow(file);
    const def = wf.definition;
    expect(def.$schema).toBe(
      'https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/workflowdefinition.json#',
    );
    expect(def.contentVersion).toBe('1.0.0.0');
    expect(Object.keys(def.triggers)).toHaveLength(1);
    const actions = allActions(def.actions);
    expect(actions.length).toBeGreaterThan(1);
    const names = new Set(actions.map((a) => a.name));
    for (const { name, action, siblings } of actions) {
      expect(typeof action.type, name).toBe('string');
      for (const after of Object.keys((action.runAfter as Json | undefined) ?? {}))
        expect(siblings, `${name} runs after ${after}`).toContain(after);
    }
    const strings = stringsIn(def);
    for (const s of strings) {
      for (const m of s.matchAll(/\b(?:body|outputs|actions)\('([^']+)'\)/g))
        expect(names, `${file}: ${s}`).toContain(m[1]);
      for (const m of s.matchAll(/\bparameters\('([^']+)'\)/g))
        expect(Object.keys(def.parameters), `${file}: ${s}`).toContain(m[1]);
    }
    // Values given at the bottom of Code view must be declared parameters.
    for (const key of Object.keys(wf.parameters ?? {})) expect(Object.keys(def.parameters)).toContain(key);
  });

  it('queue-send enqueues the job it checked, through the Azure Queues connector with a managed identity', () => {
    const wf = workflow('queue-send.workflow.json');
    const actions = wf.definition.actions;
    const parse = actions.Parse_job!;
    expect(parse.type).toBe('ParseJson');
    expect(
      (parse.inputs as Json).schema,
      'The Parse JSON schema in samples/logic-apps/queue-send.workflow.json is not schemas/job.schema.json. Update it with the command in samples/logic-apps/README.md ("Keeping the embedded schema current").',
    ).toEqual(jobSchema);

    const put = actions['Put_a_message_on_a_queue_(V2)']!;
    expect(put).toMatchObject({ type: 'ApiConnection', runAfter: { Parse_job: ['Succeeded'] } });
    const inputs = put.inputs as Json;
    expect(inputs).toMatchObject({
      method: 'post',
      host: { connection: { name: "@parameters('$connections')['azurequeues']['connectionId']" } },
      body: "@{string(body('Parse_job'))}",
    });
    expect(inputs.path).toMatch(/^\/v2\/storageAccounts\/.+\/queues\/.+\/messages$/);
    expect(wf.definition.parameters.queueName).toMatchObject({ defaultValue: 'outbound-messages' });
    expect(wf.parameters).toMatchObject({
      $connections: {
        value: {
          azurequeues: {
            connectionProperties: { authentication: { type: 'ManagedServiceIdentity' } },
            id: expect.stringMatching(/\/managedApis\/azurequeues$/),
          },
        },
      },
    });

    // The job Compose builds, with its expressions given values, is valid for the schema and the sender.
    const job = concretize(actions.Compose_job!.inputs as Json) as Json;
    expect(validateSchema(job), JSON.stringify(validateSchema.errors)).toBe(true);
    expect(parseJob(job, 'queue-message-id')).toMatchObject({ kind: 'message', to: { kind: 'user' } });
  });

  it('http-send-and-poll signs in with the managed identity, holds no key, waits with the asynchronous pattern and branches on status', () => {
    const wf = workflow('http-send-and-poll.workflow.json');
    const actions = wf.definition.actions;
    const send = actions.Send_to_Teams!;
    expect(send.type).toBe('Http');
    // The automatic polls of Location re-send the action's authentication: that is what makes them
    // pass teams-courier's Entra ID check, now that no key is echoed into Location.
    expect(String(send.operationOptions ?? '')).not.toMatch(/DisableAsyncPattern/);
    expect(send.limit).toMatchObject({ timeout: expect.stringMatching(/^PT\d+M$/) });
    const inputs = send.inputs as Json;
    expect(inputs).toMatchObject({
      method: 'POST',
      uri: "@parameters('notifyUrl')",
      authentication: { type: 'ManagedServiceIdentity', audience: "@parameters('audience')" },
    });
    // System-assigned identity: no `identity` (a user-assigned one is documented in the README).
    expect(Object.keys(inputs.authentication as Json).sort()).toEqual(['audience', 'type']);
    expect(wf.definition.parameters.audience).toMatchObject({
      type: 'String',
      defaultValue: expect.stringMatching(/^api:\/\/[^/\s]+$/),
    });
    expect(wf.definition.parameters.notifyUrl).toMatchObject({
      defaultValue: expect.stringMatching(/^https:\/\/.+\/api\/notify$/),
    });

    // No key anywhere: not as a parameter, a header, a query or an Authorization header of its own.
    expect(Object.keys(wf.definition.parameters)).not.toContain('functionKey');
    expect(Object.values(wf.definition.parameters).map((p) => (p as Json).type)).not.toContain('SecureString');
    expect(inputs.queries).toBeUndefined();
    expect(Object.keys((inputs.headers as Json | undefined) ?? {}).map((h) => h.toLowerCase())).toEqual([
      'content-type',
    ]);
    expectValidSubmission(concretize(inputs.body), 'http-send-and-poll body');

    const condition = actions.Condition_sent!;
    expect(condition).toMatchObject({
      type: 'If',
      runAfter: { Send_to_Teams: ['Succeeded'] },
      expression: { and: [{ equals: ["@body('Send_to_Teams')?['status']", 'sent'] }] },
    });
    expect(actions.Terminate_rejected_or_unfinished).toMatchObject({
      type: 'Terminate',
      runAfter: { Send_to_Teams: ['Failed', 'TimedOut'] },
    });
  });

  it.each(workflowFiles)(
    '%s sends no function key: every HTTP action authenticates with a managed identity',
    (file) => {
      const def = workflow(file).definition;
      for (const { name, action } of allActions(def.actions)) {
        if (action.type !== 'Http') continue;
        const inputs = action.inputs as Json;
        expect(inputs.authentication, `${file}: ${name}`).toMatchObject({
          type: 'ManagedServiceIdentity',
          audience: expect.any(String),
        });
        const audience = String((inputs.authentication as Json).audience);
        const param = /^@parameters\('([^']+)'\)$/.exec(audience)?.[1];
        expect(param, `${file}: ${name} takes its audience from a parameter`).toBeDefined();
        expect(Object.keys(def.parameters)).toContain(param);
        const headers = Object.keys((inputs.headers as Json | undefined) ?? {}).map((h) => h.toLowerCase());
        expect(headers, `${file}: ${name}`).not.toContain('x-functions-key');
        expect(headers, `${file}: ${name}`).not.toContain('authorization');
        expect(
          Object.keys((inputs.queries as Json | undefined) ?? {}).map((q) => q.toLowerCase()),
          `${file}: ${name}`,
        ).not.toContain('code');
      }
    },
  );

  it('the function-key variant in the README polls with its own loop, the key in a header only', () => {
    const readme = read('samples/logic-apps/README.md');
    const section = readme.slice(
      readme.indexOf('### With a function key instead'),
      readme.indexOf('## Standard logic apps'),
    );
    const block = /^( *)```json\n([\s\S]*?)^\1```$/m.exec(section);
    expect(block, 'the README shows the polling loop as JSON').not.toBeNull();
    const loop = JSON.parse(block![2]!) as Record<string, Json>;
    const actions = allActions(loop);
    const names = new Set(actions.map((a) => a.name));
    for (const s of stringsIn(loop))
      for (const m of s.matchAll(/\b(?:body|outputs)\('([^']+)'\)/g))
        expect([...names, 'Send_to_Teams'], s).toContain(m[1]);
    const http = actions.filter((a) => a.action.type === 'Http');
    expect(http.length).toBeGreaterThan(0);
    for (const { action } of http) {
      expect(action.operationOptions).toBe('DisableAsyncPattern');
      expect(action.inputs).toMatchObject({ headers: { 'x-functions-key': "@parameters('functionKey')" } });
      expect((action.inputs as Json).queries).toBeUndefined();
      expect(action.runtimeConfiguration).toMatchObject({ secureData: { properties: ['inputs'] } });
    }
    expect(loop.Until_done).toMatchObject({
      type: 'Until',
      expression: "@not(equals(outputs('Get_status')?['statusCode'], 202))",
    });
  });
});

// ---- Markdown samples -------------------------------------------------------------------------

/** Fenced code blocks with their info string and where they start. */
function codeBlocks(markdown: string): { info: string; body: string; index: number }[] {
  return [...markdown.matchAll(/^```([^\n]*)\n([\s\S]*?)^```$/gm)].map((m) => ({
    info: m[1]!.trim(),
    body: m[2]!,
    index: m.index,
  }));
}

const SHELL_VALUES: Record<string, string> = {
  USER_ID: '6f2c1a4e-1b7d-4c38-9d5e-0000000000a1',
  TENANT_ID: '72f988bf-0000-4000-8000-00000000c0de',
  NOT_BEFORE: new Date(now.getTime() + 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
};

/** Heredocs `<<JOB` / `<<BAD_JOB` in curl.md, with shell variables expanded as bash would. */
function heredocs(markdown: string): { delimiter: string; body: unknown; end: number }[] {
  return [...markdown.matchAll(/<<(['"]?)(JOB|BAD_JOB)\1\n([\s\S]*?)\n\2\n/g)].map((m) => {
    const quoted = m[1] !== '';
    const text = quoted
      ? m[3]!
      : m[3]!.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_all, name: string) => {
          const value = SHELL_VALUES[name];
          if (value === undefined)
            throw new Error(`samples/curl.md uses $${name} in a job; give it a value in SHELL_VALUES`);
          return value;
        });
    return { delimiter: m[2]!, body: JSON.parse(text) as unknown, end: m.index + m[0].length };
  });
}

describe('samples/curl.md', () => {
  const markdown = read('samples/curl.md');
  const docs = heredocs(markdown);

  it('every job body passes the API validation, and every form is shown', () => {
    const jobs = docs.filter((d) => d.delimiter === 'JOB');
    expect(jobs.length).toBeGreaterThanOrEqual(8);
    const forms = new Set<string>();
    for (const { body } of jobs) {
      expectValidSubmission(body, JSON.stringify(body).slice(0, 120));
      const items = Array.isArray(body) ? (body as Json[]) : [body as Json];
      if (Array.isArray(body)) forms.add('batch');
      for (const item of items) {
        const to = item.to as Json | undefined;
        if (to?.aadObjectId !== undefined) forms.add('user');
        if (to?.channelId !== undefined) forms.add(to.threadId === undefined ? 'channel' : 'thread');
        if (to?.aadObjectIds !== undefined) forms.add('broadcast users');
        if (to?.allInstalled !== undefined) forms.add('broadcast allInstalled');
        if (item.notBefore !== undefined) forms.add('scheduled');
        if (item.update !== undefined) forms.add('update');
        if (item.delete !== undefined) forms.add('delete');
      }
    }
    expect([...forms].sort()).toEqual([
      'batch',
      'broadcast allInstalled',
      'broadcast users',
      'channel',
      'delete',
      'scheduled',
      'thread',
      'update',
      'user',
    ]);
  });

  it('the bad request answers exactly what the document shows', () => {
    const bad = docs.filter((d) => d.delimiter === 'BAD_JOB');
    expect(bad).toHaveLength(1);
    const result = admitJobs(bad[0]!.body, { now, newId, maxJobs: MAX_JOBS_PER_REQUEST });
    if (!('problems' in result)) throw new Error('the bad request example is valid');
    const shown = codeBlocks(markdown).find((b) => b.index > bad[0]!.end && b.info === 'json');
    expect(JSON.parse(shown!.body)).toEqual({
      error: `Invalid job: ${result.problems.length} problem(s)`,
      problems: result.problems,
    });
  });

  it('every JSON block is valid JSON', () => {
    const blocks = codeBlocks(markdown).filter((b) => b.info === 'json');
    expect(blocks.length).toBeGreaterThan(3);
    for (const block of blocks) expect(() => JSON.parse(block.body), block.body.slice(0, 80)).not.toThrow();
  });
});

describe('samples/power-automate.md', () => {
  const markdown = read('samples/power-automate.md');

  it('every job to paste passes the API validation once the expressions have values', () => {
    const jobs = codeBlocks(markdown).filter((b) => b.info === 'json job');
    expect(jobs.length).toBeGreaterThanOrEqual(3);
    for (const block of jobs) expectValidSubmission(concretize(JSON.parse(block.body)), block.body.slice(0, 80));
  });

  it('every JSON block is valid JSON, and the 400 shown is what an empty object id gets', () => {
    const blocks = codeBlocks(markdown).filter((b) => b.info.startsWith('json'));
    for (const block of blocks) expect(() => JSON.parse(block.body), block.body.slice(0, 80)).not.toThrow();
    const shown = blocks.map((b) => JSON.parse(b.body) as Json).find((b) => Array.isArray(b.problems))!;
    const first = concretize(JSON.parse(blocks.find((b) => b.info === 'json job')!.body)) as Json;
    const result = admitJobs(
      { ...first, to: { ...(first.to as Json), aadObjectId: '' } },
      { now, newId, maxJobs: MAX_JOBS_PER_REQUEST },
    );
    expect(shown).toEqual({
      error: `Invalid job: ${'problems' in result ? result.problems.length : 0} problem(s)`,
      problems: 'problems' in result ? result.problems : [],
    });
  });
});

/** Every file under samples/, recursively. */
function sampleFiles(dir = path.join(root, 'samples')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sampleFiles(path.join(dir, e.name)) : [path.join(dir, e.name)],
  );
}

describe('samples keep keys out of URLs', () => {
  // A key in a URL ends up in Logic Apps run histories (readable with Reader rights) and in logs,
  // and teams-courier no longer copies `code` into Location: no sample may rely on it.
  it.each(sampleFiles().map((f) => path.relative(root, f)))('%s puts no code= in a URL', (file) => {
    const text = read(file);
    expect(text.match(/[?&]code=[^\s"'`)]*/gi) ?? [], file).toEqual([]);
    expect(text, file).not.toMatch(/"queries"\s*:\s*\{[^}]*"code"\s*:/i);
  });

  it('every request in samples/curl.md sends the credential in a header', () => {
    const markdown = read('samples/curl.md');
    const requests = codeBlocks(markdown)
      .filter((b) => b.info === 'bash')
      .flatMap((b) => b.body.split('\n'))
      .filter((line) => /\bcurl\b/.test(line) && /\$(?:APP_URL|url)\b/.test(line));
    expect(requests.length).toBeGreaterThanOrEqual(8);
    for (const line of requests) expect(line).toContain('-H "$AUTH"');
    // Both credentials are shown, the Entra ID token first (recommended), and the key as a header only.
    const bearer = markdown.indexOf('AUTH="Authorization: Bearer $TOKEN"');
    const key = markdown.indexOf('AUTH="x-functions-key: $KEY"');
    expect(bearer).toBeGreaterThan(-1);
    expect(key).toBeGreaterThan(bearer);
  });
});

describe('samples links', () => {
  it.each(['samples/README.md', 'samples/curl.md', 'samples/power-automate.md', 'samples/logic-apps/README.md'])(
    'relative links in %s point at files that exist',
    (file) => {
      const markdown = read(file);
      for (const m of markdown.matchAll(/\]\(([^)\s#]+)(#[^)]*)?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        expect(existsSync(path.join(root, path.dirname(file), target)), `${file} links to ${target}`).toBe(true);
      }
    },
  );
});
