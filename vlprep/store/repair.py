"""`repair(path)`: rebuild `index.sqlite` and `store.json` from the self-describing shards.

Every shard carries the store uuid, its number and generation, the kind, schema, producer and storage
settings (see shard.identity), and its own ids and offsets, so the index and the metadata can be rebuilt
from the shards alone. Repair never deletes: what it cannot use (unreadable or foreign shards, unfinished
writes, duplicates, a damaged index or store.json) is moved to `STORE/quarantine/`. Only `gc=True`
removes files, and only superseded generations that carry this store's uuid.
"""

from __future__ import annotations

import sqlite3
import uuid as _uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py

from vlprep.checksums import file_sha256

from . import index
from .errors import NotAStoreError, StoreDamagedError, StoreError
from .layout import (
    INDEX_FILE,
    META_FILE,
    QUARANTINE_DIR,
    SHARD_DIR,
    TMP_SUFFIX,
    is_shard_tmp,
    is_written_name,
    parse_shard_name,
)
from .metadata import load_meta, looks_like_store, new_meta, save_meta
from .schema import schema_from_json
from .shard import read_identity, structure_faults
from .writer import acquire_lock, release_lock


@dataclass
class RepairReport:
    path: str
    dry_run: bool
    index: str = "ok"  # ok | rebuilt | updated
    meta: str = "ok"  # ok | rebuilt | rolled forward
    items: int = 0
    shards: int = 0
    adopted: list[str] = field(default_factory=list)
    quarantined: list[dict[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    errors_kept: int = 0
    errors_lost: int | None = 0  # None: the old index was unreadable, its error records are lost

    @property
    def changed(self) -> bool:
        return bool(
            self.index != "ok" or self.meta != "ok" or self.adopted or self.quarantined or self.removed
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "changed": self.changed}

    def lines(self) -> list[str]:
        verb = "would " if self.dry_run else ""
        out = []
        if self.index != "ok":
            out.append(f"{verb}{'rebuild' if self.index == 'rebuilt' else 'update'} {INDEX_FILE}")
        if self.meta != "ok":
            out.append(f"{verb}{'rebuild' if self.meta == 'rebuilt' else 'roll forward'} {META_FILE}")
        out += [f"{verb}adopt {name} (complete shard the index did not list)" for name in self.adopted]
        out += [f"{verb}quarantine {q['file']}: {q['reason']}" for q in self.quarantined]
        out += [f"{verb}remove superseded {name}" for name in self.removed]
        if self.superseded and not self.removed:
            out.append(f"{len(self.superseded)} superseded generation file(s) kept (`--gc` removes them)")
        out += [f"ignored {name} (not a shard file of this store)" for name in self.ignored]
        if self.errors_lost is None:
            out.append("error records: the old index was unreadable; its error records are lost")
        elif self.errors_lost:
            out.append(f"error records: {self.errors_lost} lost")
        return out


@dataclass
class _Shard:
    path: Path
    number: int
    generation: int
    ident: dict[str, Any]


def repair(path: str | Path, dry_run: bool = False, gc: bool = False) -> RepairReport:
    """Rebuild what is missing or damaged in the store at `path` from its shards; see the module doc."""
    root = Path(path)
    if not (root / META_FILE).is_file() and not looks_like_store(root):
        # checked before the lock file is created: nothing is written into someone else's directory
        raise NotAStoreError(
            f"{root} is not a vlprep store (no {META_FILE}, {INDEX_FILE} or shard files); nothing to repair"
        )
    lock = acquire_lock(root)
    try:
        return _repair(root, dry_run, gc)
    finally:
        release_lock(lock)


def _repair(root: Path, dry_run: bool, gc: bool) -> RepairReport:
    report = RepairReport(str(root), dry_run)
    meta, meta_damage = _try_meta(root)
    legacy = meta is not None and "uuid" not in meta
    if legacy:
        meta = {**meta, "uuid": _uuid.uuid4().hex}  # a store from before identities gets one
    rows, old_errors, index_damage = _try_index(root)

    shards, anonymous, quarantine = _scan(root, report)
    uuid = meta["uuid"] if meta else _majority_uuid(shards, rows)
    for s in [s for s in shards if s.ident["store_uuid"] != uuid]:
        quarantine.append((s.path, f"belongs to another store (uuid {s.ident['store_uuid']})"))
        shards.remove(s)

    sizes = {p.name: p.stat().st_size for p in [s.path for s in shards] + [p for p, _ in anonymous]}
    trusted = index_damage is None and all(sizes.get(file) == size for _, file, _, size, *_ in rows)
    if index_damage is None and not trusted:
        index_damage = "it names shard files that are missing or changed size"
    indexed_names = {file for _, file, *_ in rows} if trusted else set()
    for path, (number, generation) in anonymous:
        if path.name in indexed_names and meta is not None:
            # written before shards carried identities, and listed by a sound index: this store's
            shards.append(_Shard(path, number, generation, _legacy_identity(meta, number, generation)))
        else:
            quarantine.append((path, "unreadable, or carries no store identity"))

    written = [s for s in shards if s.number == -1]
    numbered = [s for s in shards if s.number != -1]
    if trusted:  # a committed ShardSink file has the number the index gave it
        by_file = {file: number for number, file, *_ in rows}
        for s in written:
            s.number = by_file.get(s.path.name, -1)
        numbered += [s for s in written if s.number != -1]
        written = [s for s in written if s.number == -1]
    chosen, superseded = _choose(numbered, rows if trusted else None, quarantine)
    # unnumbered ShardSink files of the current generation are adopted under new numbers, after the
    # others (by name: deterministic); older ones were superseded by an add_field
    current = max((s.generation for s in chosen), default=meta["generation"] if meta else 0)
    next_number = max([s.number for s in shards] + [r[0] for r in rows] + [-1]) + 1
    for s in written:
        if s.generation == current:
            s.number, next_number = next_number, next_number + 1
            chosen.append(s)
        else:
            superseded.append(s)
    report.superseded = sorted(s.path.name for s in superseded)
    if not chosen and meta is None:
        raise StoreError(f"{root}: {meta_damage}, and no usable shard is left to rebuild {META_FILE} from")

    top = max((s.generation for s in chosen), default=meta["generation"] if meta else 0)
    schema_json = _store_schema(chosen, meta, top)
    keep: list[tuple[_Shard, list[str]]] = []
    seen: dict[str, str] = {}
    indexed_files = indexed_names
    for s in sorted(chosen, key=lambda s: s.number):
        problem, ids = _check(s, schema_json, seen)
        if problem:
            quarantine.append((s.path, problem))
            continue
        seen.update(dict.fromkeys(ids, s.path.name))
        keep.append((s, ids))
        if trusted and s.path.name not in indexed_files:
            report.adopted.append(s.path.name)

    report.items = sum(len(ids) for _, ids in keep)
    report.shards = len(keep)
    report.quarantined = [{"file": str(p.relative_to(root)), "reason": r} for p, r in quarantine]
    if index_damage is not None:
        report.index = "rebuilt"
        if (root / INDEX_FILE).exists():
            report.quarantined.append({"file": INDEX_FILE, "reason": index_damage})
    elif report.adopted:
        report.index = "updated"
    committed = set(seen)
    kept_errors = [e for e in old_errors or [] if e["id"] not in committed]
    report.errors_kept = len(kept_errors)
    report.errors_lost = None if old_errors is None else 0  # None: how many were lost is unknown

    new_meta_json = _repaired_meta(meta, meta_damage, chosen, top, schema_json, report, legacy)
    if meta_damage is not None and (root / META_FILE).exists():
        report.quarantined.append({"file": META_FILE, "reason": meta_damage})
    if gc:
        report.removed = report.superseded[:]
    if dry_run:
        return report

    for p, _ in quarantine:
        _quarantine(root, p)
    if report.index == "rebuilt":
        _rebuild_index(root, keep, kept_errors)
    elif report.adopted:
        conn = index.connect(root / INDEX_FILE, readonly=False)
        try:
            for s, ids in keep:
                if s.path.name in report.adopted:
                    size, sha = s.path.stat().st_size, file_sha256(s.path)
                    index.commit_shard(conn, s.number, s.path.name, ids, size, sha)
        finally:
            conn.close()
    if new_meta_json is not None:
        if meta_damage is not None and (root / META_FILE).exists():
            _quarantine(root, root / META_FILE)
        save_meta(root, new_meta_json)
    for name in report.removed:
        (root / SHARD_DIR / name).unlink()
    return report


def _try_meta(root: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return load_meta(root), None
    except StoreDamagedError as exc:
        return None, str(exc).split(": ", 1)[-1].split(";")[0]
    except StoreError:
        if (root / META_FILE).exists():
            raise
        return None, f"{META_FILE} is missing"


def _try_index(root: Path) -> tuple[list[tuple], list[dict[str, str]] | None, str | None]:
    """(shard rows, error rows, why the index cannot be trusted). Error rows are salvaged when they
    can be read even from a damaged index; None when they cannot."""
    path = root / INDEX_FILE
    if not path.is_file():
        return [], None, f"{INDEX_FILE} is missing"
    try:
        conn = index.connect(path, readonly=True)
    except StoreError as exc:
        return [], _salvage_errors(path), str(exc).split(": ", 1)[-1].split(";")[0]
    try:
        index.check_consistent(conn)
        return index.shard_rows(conn), index.error_rows(conn), None
    except StoreError as exc:
        return [], _salvage_errors(path), str(exc).split(": ", 1)[-1].split(";")[0]
    finally:
        conn.close()


def _salvage_errors(path: Path) -> list[dict[str, str]] | None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT id, source, stage, message, at FROM errors").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return [dict(zip(("id", "source", "stage", "message", "at"), r)) for r in rows]


def _scan(root: Path, report: RepairReport):
    """Shards with an identity, shard-named files without one, and what to quarantine."""
    shards: list[_Shard] = []
    anonymous: list[tuple[Path, tuple[int, int]]] = []
    quarantine: list[tuple[Path, str]] = []
    shard_dir = root / SHARD_DIR
    for path in sorted(shard_dir.iterdir()) if shard_dir.is_dir() else []:
        parsed = parse_shard_name(path.name)
        written = is_written_name(path.name)
        if path.is_dir() or (parsed is None and not written and not is_shard_tmp(path.name)):
            report.ignored.append(f"{SHARD_DIR}/{path.name}")
        elif is_shard_tmp(path.name):
            quarantine.append((path, "unfinished write"))
        elif written:
            # a ShardSink's file: numbered when committed, so its number comes from the index (or anew)
            ident = read_identity(path)
            if ident is None:
                anonymous.append((path, (-1, 0)))
            else:
                shards.append(_Shard(path, -1, ident["generation"], ident))
        else:
            ident = read_identity(path)
            if ident is None:
                anonymous.append((path, parsed))
            elif (ident["shard"], ident["generation"]) != parsed:
                quarantine.append((path, "its name disagrees with its shard number or generation"))
            else:
                shards.append(_Shard(path, parsed[0], parsed[1], ident))
    return shards, anonymous, quarantine


def _legacy_identity(meta: dict[str, Any], number: int, generation: int) -> dict[str, Any]:
    storage = {k: meta[k] for k in ("shard_size", "dtype", "compression")}
    return {
        "store_uuid": meta["uuid"],
        "shard": number,
        "generation": generation,
        "kind": meta["kind"],
        "schema": meta["schema"] or {},
        "producer": meta["producer"],
        "storage": storage,
    }


def _majority_uuid(shards: list[_Shard], rows: list[tuple]) -> str | None:
    indexed = {file for _, file, *_ in rows}
    votes = Counter(s.ident["store_uuid"] for s in shards if s.path.name in indexed) or Counter(
        s.ident["store_uuid"] for s in shards
    )
    return votes.most_common(1)[0][0] if votes else None


def _choose(
    shards: list[_Shard], rows: list[tuple] | None, quarantine: list[tuple[Path, str]]
) -> tuple[list[_Shard], list[_Shard]]:
    """The file that holds each shard number, and the superseded generations. With a trusted index, its
    files, plus unlisted shard numbers at the current generation (to adopt); without one, the newest
    generation that every shard number reached (a generation some numbers lack was never switched to)."""
    by_number: dict[int, dict[int, _Shard]] = {}
    for s in shards:
        by_number.setdefault(s.number, {})[s.generation] = s
    if rows is not None:
        gens = {s.path.name: s.generation for s in shards}
        current = {number: gens.get(file, 0) for number, file, *_ in rows}
        top = max(current.values(), default=0)
    else:
        current = {}
        gens = sorted({s.generation for s in shards}, reverse=True)
        top = 0
        for g in gens:
            if all(g in files for files in by_number.values()):
                top = g
                break
            for files in by_number.values():
                if g in files:
                    quarantine.append((files.pop(g).path, f"generation {g} was never completed"))
            by_number = {n: f for n, f in by_number.items() if f}
    chosen, superseded = [], []
    for number, files in by_number.items():
        gen = current.get(number, top)
        if number not in current and top not in files:
            for s in files.values():
                quarantine.append((s.path, "an uncommitted shard of an older generation"))
            continue
        for g, s in files.items():
            if g == gen:
                chosen.append(s)
            elif g < gen:
                superseded.append(s)
            else:
                quarantine.append((s.path, f"generation {g} was never switched to"))
    return chosen, superseded


def _store_schema(chosen: list[_Shard], meta: dict[str, Any] | None, top: int) -> dict[str, Any]:
    for s in chosen:
        if s.generation == top:
            return s.ident["schema"]
    return (meta or {}).get("schema") or {}


def _check(s: _Shard, schema_json: dict[str, Any], seen: dict[str, str]) -> tuple[str | None, list[str]]:
    if s.ident["schema"] != schema_json:
        return "its schema differs from the store's", []
    try:
        with h5py.File(s.path, "r") as f:
            faults, _, _ = structure_faults(f, schema_from_json(schema_json))
            if faults:
                return f"damaged: {faults[0]}", []
            ids = f["ids"].asstr()[()].tolist()
    except Exception as exc:
        return f"unreadable ({type(exc).__name__})", []
    if len(set(ids)) != len(ids):
        return "holds the same id twice", []
    dup = next((i for i in ids if i in seen), None)
    if dup is not None:
        return f"id {dup!r} is already in {seen[dup]}", []
    return None, ids


def _repaired_meta(meta, meta_damage, chosen, top, schema_json, report, legacy) -> dict[str, Any] | None:
    if meta is not None:
        if legacy or top > meta["generation"] or (schema_json and meta["schema"] != schema_json):
            report.meta = "rolled forward"
            return {**meta, "generation": top, "schema": schema_json}
        return None
    ident = next(s.ident for s in chosen if s.generation == top)
    storage = ident["storage"]
    rebuilt = new_meta(
        ident["kind"], storage["shard_size"], storage["dtype"], storage["compression"], ident["producer"]
    )
    rebuilt.update(uuid=ident["store_uuid"], schema=schema_json, generation=top)
    report.meta = "rebuilt"
    return rebuilt


def _quarantine(root: Path, path: Path) -> None:
    target_dir = root / QUARANTINE_DIR
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    n = 1
    while target.exists():
        target = target_dir / f"{path.name}.{n}"
        n += 1
    path.rename(target)


def _rebuild_index(root: Path, keep: list[tuple[_Shard, list[str]]], errors: list[dict[str, str]]) -> None:
    tmp = root / (INDEX_FILE + TMP_SUFFIX)
    tmp.unlink(missing_ok=True)
    conn = index.connect(tmp, readonly=False, create=True)
    try:
        with index.transaction(conn):
            for s, ids in keep:
                size, sha = s.path.stat().st_size, file_sha256(s.path)
                conn.execute(
                    "INSERT INTO shards VALUES (?, ?, ?, ?, ?, ?)",
                    (s.number, s.path.name, len(ids), size, sha, index.now()),
                )
                conn.executemany(
                    "INSERT INTO items VALUES (?, ?, ?)", ((i, s.number, r) for r, i in enumerate(ids))
                )
            conn.executemany(
                "INSERT OR REPLACE INTO errors VALUES (?, ?, ?, ?, ?)",
                [(e["id"], e["source"], e["stage"], e["message"], e["at"]) for e in errors],
            )
    finally:
        conn.close()
    for name in (INDEX_FILE, INDEX_FILE + "-journal"):
        if (root / name).exists():
            _quarantine(root, root / name)
    tmp.rename(root / INDEX_FILE)
