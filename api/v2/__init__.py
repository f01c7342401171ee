"""The OCI Distribution API (`/v2`): routes, blobs, manifests, the manifest fast path and
the helpers they share (headers, OCI error bodies, ranges)."""
