// Preloaded (node --import) by the hardening tests: writes the process's peak resident set size (KiB) to
// $DIFFUSE_TEST_RSS_FILE when it exits, so each CLI case can be held to a memory bound.
import { writeFileSync } from 'node:fs';

const file = process.env.DIFFUSE_TEST_RSS_FILE;
if (file) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
