"""HTTP plumbing shared by the routes: `http` (bodies, query parsing), `responses` (orjson, the
`{success, data}` envelope), `http_cache` and `cache_policies` (ETags, Cache-Control, 304s) and
`read_caches` (the per-version caches behind runtime status and market frames)."""
