// A real OpenID provider for the interop suite: the npm package oidc-provider, on loopback,
// issuing JWT access tokens (RS256) for one resource, procore-token-mcp's public URL, to two
// agent clients by the client-credentials grant (each client is its own principal: its
// client id is the token's subject).
//
//   node oidc_provider.mjs PORT RESOURCE SECRET
//
// Prints "issuer URL" once it listens. Its signing keys are the package's development keys
// and its storage is memory: it is a test stand-in, started and stopped by run.sh.
import Provider from "oidc-provider";

const [port, resource, secret] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const agent = (id) => ({
  client_id: id,
  client_secret: secret,
  grant_types: ["client_credentials"],
  redirect_uris: [],
  response_types: [],
});

const provider = new Provider(issuer, {
  clients: [agent("agent-alice"), agent("agent-bob")],
  features: {
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (indicator !== resource) throw new Error(`unknown resource ${indicator}`);
        return {
          scope: "mcp",
          audience: resource,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        };
      },
    },
  },
});
provider.listen(Number(port), "127.0.0.1", () => console.log(`issuer ${issuer}`));
