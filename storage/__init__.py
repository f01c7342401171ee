"""Content-addressed blob storage and upload sessions. Imports nothing of ours."""
