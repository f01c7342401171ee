"""The domain: the model, and the application that stores it. Nothing here knows HTTP, SQL
or NATS; only the application does I/O, through eventsourcing's event store.

The model (no I/O) — aggregates, events, value objects, rules:
- `content`: repositories, manifests, tags, blob links; `identity`: users, sign-ins, revoked
  /api tokens; `namespaces`; `access_tokens` (personal tokens, robots); `pulls` (pulls
  counted in memory, recorded per repository and interval);
- value objects and rules: `names` (repository names, references, digests), `manifests`
  (media types, manifest parsing), `policy` (who may do what), `passwords`, `throttle`,
  `caller` (who acted), `ids` (aggregate ids from natural names), `errors`;
- `documents`: events as plain documents (the history view, NATS).

The eventsourcing application:
- `registry`: the `Registry` Application, made of the command groups in `commands/`
  (`base`: loading aggregates and retrying conflicts; `content`, `identity`, `namespaces`,
  `access_tokens`, `pulls`);
- `transcoder`: how events are stored (MessagePack); `topics`: old topics of moved classes.
"""
