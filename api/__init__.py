"""The Litestar app: one module per surface (distribution, health, …) plus shared plumbing."""
