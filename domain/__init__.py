"""The pure domain: aggregates, events, value objects and errors. No I/O."""
