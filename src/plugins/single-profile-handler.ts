// single-profile-handler (GIE): runs the one scheduling profile and makes
// its result the answer. Hermes-router always runs exactly one profile (PD
// happens inside it through filter-by-pd-label), so this plugin only has to
// be accepted, so that GIE configurations that list it keep loading.
import { z } from 'zod';
import { definePlugin } from './plugin.js';

const TYPE = 'single-profile-handler';

export const singleProfileHandler = definePlugin({
  type: TYPE,
  parameters: z.strictObject({}),
  create: (name) => ({ type: TYPE, name, profileHandler: true }),
});
