"""The `/api` JSON surfaces (sessions, users, namespaces, tokens and robots, images,
repositories, history, system) and their plumbing, which lives once: the envelope, the body
parser, the shared query parameters, the OpenAPI document and its offline docs page."""
