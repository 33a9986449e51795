// Runs graphql-http's audits of the GraphQL over HTTP specification against
// the server at the URL given as the only argument, and prints one JSON
// array: each audit's id, name, status (ok, or for a failure error for a
// MUST, warn for a SHOULD, notice for a MAY), and for a failure why, with
// the status code the server answered.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audits.mjs URL');
  process.exit(2);
}

const results = await Promise.all(
  serverAudits({ url }).map(async (audit) => {
    const result = await audit.fn();
    const report = { id: result.id, name: result.name, status: result.status };
    if (result.status !== 'ok') {
      report.message = `${result.reason} (the server answered ${result.response.status})`;
    }
    return report;
  }),
);
console.log(JSON.stringify(results, null, 2));
