import { ledgerContract } from '../helpers/ledger-contract.js';
import { MemoryLedger } from '../../src/quota/ledger/memory.js';

// One process: every "proxy" is the same ledger.
ledgerContract('memory', async () => ({
  ledgers: async (n, swift, ttlMs = 60_000) => {
    const ledger = new MemoryLedger({ ttlMs, maxEntries: 1000, read: (key) => swift.read(key) });
    return Array.from({ length: n }, () => ledger);
  },
  close: async () => {},
}));
