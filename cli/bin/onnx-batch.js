#!/usr/bin/env node
// Tracked, so npm links it at install time; the built code (`npm run build`, run by `npm start` and `npm test`) does the work.
require('../dist/main.js');
