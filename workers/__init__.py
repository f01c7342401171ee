"""Long-running processes: the NATS relay and the projection runner (and later sync, scan, GC)."""
