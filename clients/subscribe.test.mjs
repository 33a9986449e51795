// Runs the graphql-ws client (the one web and React Native apps use)
// through init, subscribe, receive and complete against a running server.
// The Go test TestGraphQLWSClient starts the server and passes:
//   PICKETLINE_WS    ws://host:port/graphql
//   PICKETLINE_HTTP  http://host:port/graphql
//   PICKETLINE_TOKEN an access token of the line's captain
//   PICKETLINE_LINE  the line's id
//   PICKETLINE_SHIFT a shift of the line with spots left
//   PICKETLINE_MEMBER_TOKEN an access token of a member who will sign up
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this through go test`);
  return v;
};

async function gql(token, query, variables) {
  const res = await fetch(env('PICKETLINE_HTTP'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await res.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data;
}

test('graphql-ws client: init, subscribe, receive, complete', async () => {
  const token = env('PICKETLINE_TOKEN');
  const line = env('PICKETLINE_LINE');
  const { picketLine } = await gql(token, 'query($l: ID!) { picketLine(id: $l) { eventCursor } }', { l: line });

  let acked = false;
  const client = createClient({
    url: env('PICKETLINE_WS'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    on: { connected: () => { acked = true; } },
  });
  try {
    const events = client.iterate({
      query: `subscription($l: ID!, $after: String) {
        picketLineEvents(picketLineId: $l, after: $after) { cursor seq kind shift { id signedUpCount } }
      }`,
      variables: { l: line, after: picketLine.eventCursor },
    });
    const first = events.next();
    await gql(env('PICKETLINE_MEMBER_TOKEN'), 'mutation($s: ID!) { signUpForShift(shiftId: $s) { id } }', { s: env('PICKETLINE_SHIFT') });
    const { value, done } = await first;
    assert.equal(done, false);
    assert.equal(acked, true);
    assert.equal(value.errors, undefined);
    const e = value.data.picketLineEvents;
    assert.equal(e.kind, 'SIGNUP_CHANGED');
    assert.equal(e.shift.id, env('PICKETLINE_SHIFT'));
    assert.equal(e.shift.signedUpCount, 1);
    // Completing from the client ends the subscription cleanly.
    const end = await events.return();
    assert.equal(end.done, true);
  } finally {
    await client.dispose();
  }
});

test('graphql-ws client: a bad token is refused with 4403', async () => {
  const client = createClient({
    url: env('PICKETLINE_WS'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: 'Bearer not-a-token' },
    retryAttempts: 0,
    lazy: false,
  });
  const closed = await new Promise((resolve) => client.on('closed', resolve));
  assert.equal(closed.code, 4403);
  await client.dispose();
});
