"""Long-running processes: those that follow the event log (the projection runner, the NATS
relay; later sync, scan, GC) with their start and stop, the upload purge, and the flush of
the pulls each API process counted."""
