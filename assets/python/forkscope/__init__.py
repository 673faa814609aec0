"""forkscope helper (placeholder)."""
