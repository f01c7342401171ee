"""Who the caller is: signing keys and JWTs, the `/token` endpoint, principals, the cache of
verified passwords, the sign-in throttle, and the guards of `/v2` and `/api`."""
