/**
 * The S3 API attacks (s3-attacks.ts) as tempauth users, in both modes; keystone.test.ts runs them with Keystone
 * EC2 credentials too.
 */
import { MODES, openArena } from './arena.js';
import { s3Attacks } from './s3-attacks.js';

const ACCOUNTS = {
  'cached mode': [83, 84, 85, 86, 87, 88, 89, 109, 141, 143, 165, 166, 167, 168, 169, 170, 171, 172, 173],
  'precise mode': [90, 91, 92, 93, 94, 95, 96, 110, 142, 144, 175, 176, 177, 178, 179, 180, 181, 182, 183],
} as const;

s3Attacks({ title: (mode) => `S3 API, ${mode.name}`, modes: MODES, open: (mode) => openArena(mode, [...ACCOUNTS[mode.name]]), hostAddressing: true });
