"""rules (placeholder)."""
