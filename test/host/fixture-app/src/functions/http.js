/* global require */
const { app } = require('@azure/functions');

app.http('getItem', {
  methods: ['GET', 'PUT'],
  route: 'items/{id}/{detail?}',
  handler: async (request, context) => {
    context.log('getItem called with id', request.params.id);
    return {
      status: Number(request.query.get('status') ?? 200),
      headers: { 'x-fixture': 'yes' },
      jsonBody: {
        id: request.params.id,
        detail: request.params.detail,
        q: request.query.get('q'),
        multi: request.query.get('multi'),
        header: request.headers.get('x-test'),
        method: request.method,
        url: request.url,
        functionName: context.functionName,
        invocationId: context.invocationId,
        triggerMetadata: context.triggerMetadata ?? null,
      },
    };
  },
});

app.http('echo', {
  methods: ['POST'],
  handler: async (request) => ({
    status: 201,
    headers: { 'content-type': request.headers.get('content-type') ?? 'application/octet-stream' },
    body: new Uint8Array(await request.arrayBuffer()),
  }),
});

app.http('boom', {
  methods: ['GET'],
  handler: async (_request, context) => {
    context.error('about to fail');
    throw new Error('secret internal detail');
  },
});

app.http('silent', { methods: ['GET'], handler: async () => undefined });

app.http('cookies', {
  methods: ['GET'],
  handler: async () => ({
    status: 200,
    body: 'with cookies',
    cookies: [{ name: 'session', value: 'abc', httpOnly: true, sameSite: 'Strict', maxAge: 60, secure: true }],
  }),
});

// What the function got as a body: the host forwards one only with a Content-Length above 0.
app.http('bodyInfo', {
  methods: ['POST'],
  handler: async (request) => ({ jsonBody: { hasBody: request.body !== null, text: await request.text() } }),
});

// A key in Azure; none locally.
app.http('keyed', {
  methods: ['GET'],
  authLevel: 'function',
  handler: async () => ({ body: 'no key needed locally' }),
});
