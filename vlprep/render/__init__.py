"""Pictures of what a store holds, for `vlprep inspect --render`: region boxes drawn on their image, a
strip of video frames with their feature norms or tokens, a histogram of token usage."""

from __future__ import annotations

from pathlib import Path


def render(
    store,
    out: str | Path,
    item_id: str | None = None,
    media: str | Path | None = None,
    vocab: str | None = None,
) -> Path:
    """Draw `item_id` of `store` (or, for a token store without an id, its token histogram) to `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if item_id is None:
        if "tokens" not in store.schema:
            raise ValueError(
                "--render needs --id ID, except on a token store (which draws its token histogram)"
            )
        from .tokens import render_tokens

        render_tokens(store, out)
        return out
    if store.kind == "regions":
        from .regions import render_region_item

        render_region_item(store, item_id, out, image=media, vocab=vocab)
    elif store.kind in ("video", "tokens"):
        from .video import render_video_item

        render_video_item(store, item_id, out, video=media)
    else:
        raise ValueError(f"no rendering for stores of kind {store.kind!r}")
    return out
