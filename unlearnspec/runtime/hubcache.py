"""A hub model's snapshot in the local Hugging Face cache, found with ``huggingface_hub`` and without torch (the
preflight that refuses a stale plan reads it before any framework loads)."""

from __future__ import annotations

from pathlib import Path


def hub_snapshot_dir(repo_id: str, revision: str) -> Path | None:
    """The folder of a hub model's snapshot at commit ``revision`` in the local Hugging Face cache (found by
    ``huggingface_hub``, offline), or None when the cache does not hold that commit."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except ValueError:  # not a repo id the hub accepts
        return None
    return Path(found).parent if isinstance(found, str) else None
