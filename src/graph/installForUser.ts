/**
 * The Graph half of "message a user who never installed the bot": install the app for the user
 * (201, or 409 when it already was), find the installation, and get its 1:1 chat.
 *
 * Install first, as Company Communicator does: this runs only for users with no stored personal
 * chat, most of whom do not have the app, so listing first would cost a call for nearly everyone.
 * Graph may not list an installation it just accepted: that is GraphInstallationPending (retried).
 *
 * The sender does not use the chat found here: it installs (installAppForUser), then creates the
 * chat with the Bot Connector's createConversation, which gives the id and serviceUrl the Connector
 * uses with one Graph call instead of three (src/outbound/connectorCalls.ts, docs/graph-install.md).
 */
import type { GraphClient } from './graphClient';
import { failure, type GraphResult } from './graphResult';

export interface InstalledChat {
  readonly installed: 'new' | 'already';
  readonly installationId: string;
  /** The 1:1 chat between the user and the bot, `19:…@unq.gbl.spaces`. */
  readonly chatId: string;
}

export async function installAndGetChat(
  graph: Pick<GraphClient, 'installAppForUser' | 'findInstallation' | 'getInstallationChat'>,
  tenantId: string,
  userId: string,
  catalogId: string,
): Promise<GraphResult<InstalledChat>> {
  const install = await graph.installAppForUser(tenantId, userId, catalogId);
  if (!install.ok) return install;
  const found = await graph.findInstallation(tenantId, userId, catalogId);
  if (!found.ok) return found;
  if (found.value === undefined)
    return {
      ok: false,
      failure: failure(
        'GraphInstallationPending',
        `Graph accepted the installation of ${catalogId} for user ${userId} (${install.value.installed}) but does not list it yet`,
      ),
    };
  const chat = await graph.getInstallationChat(tenantId, userId, found.value);
  if (!chat.ok) return chat;
  return { ok: true, value: { installed: install.value.installed, installationId: found.value, chatId: chat.value } };
}
