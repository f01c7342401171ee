"""The commands of the `Registry` application, one group per module, on a common base."""
