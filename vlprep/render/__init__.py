"""Pictures of what a store holds, for `vlprep inspect --render`: region boxes drawn on their image, a
strip of video frames with their feature norms, token ids over time, and overviews of whole stores."""

from __future__ import annotations

from pathlib import Path


class RenderError(ValueError):
    """What was asked cannot be drawn (a label file that does not fit, a record without an image size)."""


def render(
    store,
    out: str | Path,
    item_id: str | None = None,
    media: str | Path | None = None,
    vocab: str | None = None,
    top: int = 10,
) -> Path:
    """Draw `item_id` of `store` to `out`; without an id, an overview of the store (a few items, or for a
    token store its token usage)."""
    from vlprep.extractors.regions.vocab import parse_vocab

    from .media import MediaMissingError
    from .regions import RecordError

    out = Path(out)
    if out.exists() and out.is_dir():
        raise RenderError(f"--render {out} is a directory; give a .png file name")
    if vocab is not None and store.kind != "regions":
        raise RenderError(f"--vocab names region labels; {store.path} is a {store.kind} store")
    try:
        names = parse_vocab(vocab) if vocab else None
    except (OSError, ValueError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = f"{exc.filename}: " if isinstance(exc, OSError) and exc.filename else ""
        raise RenderError(f"--vocab: {where}{detail}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if item_id is None:
            return _render_store(store, out, names, top)
        return _render_item(store, item_id, out, media, names, top)
    except (MediaMissingError, RecordError) as exc:
        raise RenderError(str(exc)) from None


def _render_item(store, item_id, out, media, names, top) -> Path:
    if store.kind == "regions":
        from .regions import render_region_item

        return render_region_item(store, item_id, out, image=media, names=names, max_boxes=top)
    if "tokens" in store.schema and "timestamps" in store.schema:
        from .timeline import render_token_item

        return render_token_item(store, item_id, out)
    if store.kind == "video":
        from .video import render_video_item

        return render_video_item(store, item_id, out, video=media)
    raise RenderError(f"no rendering for items of {store.kind!r} stores")


def _render_store(store, out, names, top) -> Path:
    if "tokens" in store.schema:
        from .tokens import render_tokens

        return render_tokens(store, out)
    if len(store) == 0:
        raise RenderError(f"{store.path} holds no items yet; nothing to draw")
    from .overview import render_overview

    return render_overview(store, out, names=names, top=top)
