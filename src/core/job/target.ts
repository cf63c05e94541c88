/** A job's `to`: exactly one of the forms in targetForms.ts, and only that form's fields. */
import type { Problem } from '../../errors';
import { isObject, type Json } from '../json';
import { TARGET_FORMS, type AnyTarget, type TargetForm } from './targetForms';
import type { BatchTarget, BroadcastTarget } from './types';

/** E.g. `{aadObjectId, tenantId?}`, or `{batch: "team", teamId, tenantId?}`. */
function describeForm(form: TargetForm): string {
  const head = form.value === undefined ? form.key : `${form.key}: ${JSON.stringify(form.value)}`;
  return `{${[head, ...(form.required ?? []), ...form.optional.map((field) => `${field}?`)].join(', ')}}`;
}

/** `exactly one of {conversationId}, …, {batch: "channels", channelIds, tenantId?}`. */
const TARGET_FORMS_TEXT = `exactly one of ${TARGET_FORMS.slice(0, -1).map(describeForm).join(', ')} or ${describeForm(TARGET_FORMS.at(-1)!)}`;

/** The form a `to` names: by its one key, and by that key's value where forms share the key. */
function chooseForm(to: Json, problems: Problem[]): TargetForm | undefined {
  const keys = [...new Set(TARGET_FORMS.filter((form) => to[form.key] !== undefined).map((form) => form.key))];
  if (keys.length !== 1) {
    problems.push({
      path: 'to',
      message:
        keys.length === 0
          ? `has no target: ${TARGET_FORMS_TEXT}`
          : `has conflicting targets (${keys.join(', ')}): ${TARGET_FORMS_TEXT}`,
    });
    return undefined;
  }
  const key = keys[0]!;
  const forms = TARGET_FORMS.filter((form) => form.key === key);
  if (forms.every((form) => form.value === undefined)) return forms[0];
  const form = forms.find((f) => f.value === to[key]);
  if (form === undefined)
    problems.push({
      path: `to.${key}`,
      message: `must be one of ${forms.map((f) => JSON.stringify(f.value)).join(', ')}: ${forms.map(describeForm).join(', ')}`,
    });
  return form;
}

export function parseTarget(to: unknown, problems: Problem[]): AnyTarget | undefined {
  if (!isObject(to)) {
    problems.push({
      path: 'to',
      message: to === undefined ? `is required: ${TARGET_FORMS_TEXT}` : `must be an object: ${TARGET_FORMS_TEXT}`,
    });
    return undefined;
  }
  const form = chooseForm(to, problems);
  if (form === undefined) return undefined;
  const fields = new Set([form.key, ...(form.required ?? []), ...form.optional]);
  for (const key of Object.keys(to)) {
    if (!fields.has(key))
      problems.push({
        path: `to.${key}`,
        message: `is not allowed with to.${form.key}${form.value === undefined ? '' : ` ${JSON.stringify(form.value)}`}`,
      });
  }
  const before = problems.length;
  const target = form.parse(to, problems);
  // A form's parser reads `null` as absent; the form was still chosen, so say what is wrong.
  if (target === undefined && problems.length === before)
    problems.push({ path: `to.${form.key}`, message: `must not be ${JSON.stringify(to[form.key])}` });
  return problems.length === before ? target : undefined;
}

/** The targets a broadcast job fans out to. A record, so a new BroadcastTarget kind must be listed here to compile. */
const BROADCAST_KINDS: Record<BroadcastTarget['kind'], true> = { users: true, allInstalled: true };

export function isBroadcastTarget(to: AnyTarget): to is BroadcastTarget {
  return Object.hasOwn(BROADCAST_KINDS, to.kind);
}

/** A `to.batch` target: sent through Teams' batch operations. */
export function isBatchTarget(to: AnyTarget): to is BatchTarget {
  return to.kind === 'batch';
}
