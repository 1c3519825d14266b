// Mint short-lived lambdacast tokens in a Netlify or Vercel function (example).
//
// Both platforms run Web-standard handlers, `(Request) => Response`:
//   Netlify:  netlify/functions/lambdacast-token.mjs  ->  export default handler
//   Vercel:   api/lambdacast-token.mjs                ->  export const POST = handler
// HS256 is signed with the platform's Web Crypto (no dependency to install). For RS256/ES256 or for
// verifying tokens, use a library such as `jose` instead.
//
// The secret is the same value as the SSM SecureString lambdacast's authorizer reads; set it as the
// environment variable LAMBDACAST_TOKEN_SECRET in the platform's settings, never in source code.

const encoder = new TextEncoder();

function base64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function encodeJson(value) {
  return base64url(encoder.encode(JSON.stringify(value)));
}

/**
 * Returns an HS256 JWT with sub/name/channels/iat/exp claims.
 * @param {{secret: string, userId: string, name?: string, channels?: string[],
 *          ttlSeconds?: number, issuer?: string, audience?: string, now?: number}} options
 * @returns {Promise<string>}
 */
export async function mintToken({ secret, userId, name, channels = [], ttlSeconds = 300, issuer, audience, now = Date.now() }) {
  if (!secret || encoder.encode(secret).length < 32) throw new Error("the secret must be at least 32 bytes");
  if (typeof userId !== "string" || userId.length === 0 || userId.length > 128) throw new Error("userId must be 1-128 characters");
  const iat = Math.floor(now / 1000);
  const claims = { sub: userId, iat, exp: iat + ttlSeconds };
  if (name) claims.name = name;
  if (channels.length) claims.channels = channels;
  if (issuer) claims.iss = issuer;
  if (audience) claims.aud = audience;
  const signingInput = `${encodeJson({ alg: "HS256", typ: "JWT" })}.${encodeJson(claims)}`;
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const signature = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(signingInput)));
  return `${signingInput}.${base64url(signature)}`;
}

/**
 * Builds a `(Request) => Response` handler: POST -> {"token"} for the signed-in user, else 401.
 * @param {{secret: string, authenticate: (request: Request) => Promise<{userId: string, name?: string, channels?: string[]} | null>, ttlSeconds?: number}} options
 */
export function createTokenHandler({ secret, authenticate, ttlSeconds = 300 }) {
  const json = (status, body) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", "cache-control": "no-store" } });
  return async (request) => {
    if (request.method !== "POST") return json(405, { error: "use POST" });
    const user = await authenticate(request);
    if (!user) return json(401, { error: "sign in first" });
    return json(200, { token: await mintToken({ userId: user.userId, name: user.name, channels: user.channels, secret, ttlSeconds }) });
  };
}

// Replace with your site's own session check (a session cookie, your auth provider's SDK...).
// Until you do, the endpoint answers 401 to everyone: it never mints a token for an unknown caller.
async function yourSessionUser(_request) {
  return null; // e.g. { userId: "user-42", name: "Ada", channels: ["private-team-42-*", "presence-team-42"] }
}

const handler = createTokenHandler({
  secret: globalThis.process?.env?.LAMBDACAST_TOKEN_SECRET ?? "",
  authenticate: yourSessionUser,
});

export default handler; // Netlify Functions (v2)
export const POST = handler; // Vercel (Web handler)
