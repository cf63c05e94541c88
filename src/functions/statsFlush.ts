/**
 * No function: when the host stops this worker (scale-in, a deployment, Ctrl-C locally), the
 * outcome counts since the last flush are written to the `stats` table instead of being lost
 * (src/store/statsRollup.ts). A crash still loses them, at most about 15 seconds' worth.
 */
import { app } from '@azure/functions';
import { flushStats } from '../runtime';

app.hook.appTerminate(async () => {
  await flushStats();
});
