// GraphiQL for the platform's admins, bundled with everything it needs: the page loads
// nothing from outside the platform's own origin.
import React from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import 'graphiql/graphiql.css';

const DEFAULT_QUERY = `# Log in (mutation LogIn), put the token in the headers below as
#   {"Authorization": "Bearer <accessToken>", "X-Organization-Id": "<organization id>"}
# and explore. Headers are kept in this browser's local storage.

mutation LogIn {
  logIn(input: {email: "alice@acme.test", password: "demo-password"}) {
    accessToken
    user { name }
  }
}

query MyOrganizations {
  viewer { organizations(first: 10) { edges { node { id name viewerRole } } } }
}
`;

// Sends each operation to this origin's /graphql with the headers from the editor.
async function fetcher(params, options) {
  const response = await fetch(new URL('/graphql', window.location.href), {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/graphql-response+json, application/json',
      ...(options && options.headers ? options.headers : {}),
    },
    body: JSON.stringify(params),
  });
  return response.json();
}

// `?query=…` opens the editor with that document (links from the README, tests).
const fromLink = new URLSearchParams(window.location.search).get('query');

createRoot(document.getElementById('graphiql')).render(
  React.createElement(GraphiQL, {
    fetcher,
    defaultQuery: DEFAULT_QUERY,
    query: fromLink === null ? undefined : fromLink,
    shouldPersistHeaders: true,
    defaultEditorToolsVisibility: 'headers',
  }),
);
