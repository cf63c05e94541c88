/** A job's `to`: exactly one of the forms in targetForms.ts, and only that form's fields. */
import type { Problem } from '../../errors';
import { isObject } from '../json';
import { TARGET_FORMS, type TargetForm } from './targetForms';
import type { BroadcastTarget, JobTarget } from './types';

/** E.g. `{aadObjectId, tenantId?}`. */
function describeForm(form: TargetForm): string {
  return `{${[form.key, ...form.optional.map((field) => `${field}?`)].join(', ')}}`;
}

/** `exactly one of {conversationId}, …, {aadObjectIds, tenantId?} or {allInstalled, …}`. */
const TARGET_FORMS_TEXT = `exactly one of ${TARGET_FORMS.slice(0, -1).map(describeForm).join(', ')} or ${describeForm(TARGET_FORMS.at(-1)!)}`;

export function parseTarget(to: unknown, problems: Problem[]): JobTarget | BroadcastTarget | undefined {
  if (!isObject(to)) {
    problems.push({
      path: 'to',
      message: to === undefined ? `is required: ${TARGET_FORMS_TEXT}` : `must be an object: ${TARGET_FORMS_TEXT}`,
    });
    return undefined;
  }
  const present = TARGET_FORMS.filter((form) => to[form.key] !== undefined);
  const form = present[0];
  if (form === undefined || present.length > 1) {
    problems.push({
      path: 'to',
      message:
        form === undefined
          ? `has no target: ${TARGET_FORMS_TEXT}`
          : `has conflicting targets (${present.map((f) => f.key).join(', ')}): ${TARGET_FORMS_TEXT}`,
    });
    return undefined;
  }
  for (const key of Object.keys(to)) {
    if (key !== form.key && !form.optional.includes(key))
      problems.push({ path: `to.${key}`, message: `is not allowed with to.${form.key}` });
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

export function isBroadcastTarget(to: JobTarget | BroadcastTarget): to is BroadcastTarget {
  return Object.hasOwn(BROADCAST_KINDS, to.kind);
}
