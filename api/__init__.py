"""The Litestar app (`api.app`), by surface:

- `api/v2/` — the OCI Distribution API: routes, blobs, manifests, the manifest fast path;
- `api/auth/` — signing keys and JWTs, `/token`, principals, the sign-in throttle, the
  verified-password cache, and the guards of `/v2` and `/api`;
- `api/manage/` — the `/api` JSON surfaces and their one set of plumbing (envelope, bodies,
  query parameters, the OpenAPI document);
- here: `/health`, the services handlers share, error mapping, the database gate, trusted
  proxies and the expiring map of the credential caches.
"""
