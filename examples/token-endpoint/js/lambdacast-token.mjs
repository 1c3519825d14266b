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
const DEFAULT_AUDIENCE = "lambdacast"; // the template's AuthAudience default
const MAX_TTL_SECONDS = 86_400; // the template's MaxTokenLifetimeSeconds default: longer tokens are refused

function base64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function encodeJson(value) {
  return base64url(encoder.encode(JSON.stringify(value)));
}

/**
 * Returns an HS256 JWT with sub/aud/name/channels/iat/exp claims. `audience` is the stack's AuthAudience
 * (`lambdacast` by default); `issuer` is needed only when the stack sets AuthIssuer.
 * @param {{secret: string, userId: string, name?: string, channels?: string[],
 *          ttlSeconds?: number, issuer?: string, audience?: string, now?: number}} options
 * @returns {Promise<string>}
 */
export async function mintToken({
  secret,
  userId,
  name,
  channels = [],
  ttlSeconds = 300,
  issuer,
  audience = DEFAULT_AUDIENCE,
  now = Date.now(),
}) {
  if (!secret || encoder.encode(secret).length < 32) throw new Error("the secret must be at least 32 bytes");
  if (typeof userId !== "string" || userId.length === 0 || userId.length > 128) throw new Error("userId must be 1-128 characters");
  if (!(ttlSeconds > 0 && ttlSeconds <= MAX_TTL_SECONDS)) throw new Error(`ttlSeconds must be 1-${MAX_TTL_SECONDS}`);
  if (!audience) throw new Error("the audience is required (the authorizer refuses tokens without aud)");
  const iat = Math.floor(now / 1000);
  const claims = { sub: userId, aud: audience, iat, exp: iat + ttlSeconds };
  if (name) claims.name = name;
  if (channels.length) claims.channels = channels;
  if (issuer) claims.iss = issuer;
  const signingInput = `${encodeJson({ alg: "HS256", typ: "JWT" })}.${encodeJson(claims)}`;
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const signature = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(signingInput)));
  return `${signingInput}.${base64url(signature)}`;
}

/**
 * Builds a `(Request) => Response` handler: POST -> {"token"} for the signed-in user, else 401.
 * @param {{secret: string, authenticate: (request: Request) => Promise<{userId: string, name?: string, channels?: string[]} | null>,
 *          ttlSeconds?: number, audience?: string, issuer?: string}} options
 */
export function createTokenHandler({ secret, authenticate, ttlSeconds = 300, audience = DEFAULT_AUDIENCE, issuer }) {
  const json = (status, body) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", "cache-control": "no-store" } });
  return async (request) => {
    if (request.method !== "POST") return json(405, { error: "use POST" });
    const user = await authenticate(request);
    if (!user) return json(401, { error: "sign in first" });
    const { userId, name, channels } = user;
    return json(200, { token: await mintToken({ userId, name, channels, secret, ttlSeconds, audience, issuer }) });
  };
}

// Replace with your site's own session check (a session cookie, your auth provider's SDK...).
// Until you do, the endpoint answers 401 to everyone: it never mints a token for an unknown caller.
async function yourSessionUser(_request) {
  return null; // e.g. { userId: "user-42", name: "Ada", channels: ["private-team-42-*", "presence-team-42"] }
}

const env = globalThis.process?.env ?? {};
const handler = createTokenHandler({
  secret: env.LAMBDACAST_TOKEN_SECRET ?? "",
  audience: env.LAMBDACAST_TOKEN_AUDIENCE || DEFAULT_AUDIENCE,
  issuer: env.LAMBDACAST_TOKEN_ISSUER || undefined,
  authenticate: yourSessionUser,
});

export default handler; // Netlify Functions (v2)
export const POST = handler; // Vercel (Web handler)
