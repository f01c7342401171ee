"""Views of the event log: one module per view, with its projector and its queries."""
