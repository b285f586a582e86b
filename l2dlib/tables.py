"""A study's table: gather what exists (the cache, the table on disk, other profiles'
tables of equal settings), assemble the rows, and describe them in the provenance."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from . import METHODS, numerics, results
from .data import Dataset, crowds
from .evaluation import BIN_KEYS, COLUMNS, CONFIG_KEYS, RELIABILITY_COLUMNS, ROW_KEYS
from .profiles import Profile, get_profile, profiles_of
from .studies import AXES, IDENTITY, SCHEDULE, RunConfig, run_config


@dataclass
class Record:
    """One finished configuration: its per-expert rows and reliability bins."""

    rows: list[dict]  # ROW_KEYS + CONFIG_KEYS
    bins: list[dict] | None  # None: unknown (its reliability table was unreadable)


@dataclass
class StudyState:
    study: str
    keys: dict[tuple, str] = field(default_factory=dict)  # identity -> the key this code computes
    configs: dict[str, RunConfig] = field(default_factory=dict)  # key -> configuration
    records: dict[str, Record] = field(default_factory=dict)
    on_disk: set[str] = field(default_factory=set)  # keys of the table on disk
    previous: dict | None = None  # provenance on disk
    dirty: bool = False  # the table on disk must be rewritten
    computed: int = 0
    reused: dict[str, int] = field(default_factory=dict)  # other profiles' tables -> rows taken


def gather(
    study: str,
    grid: list[RunConfig],
    prof: Profile,
    results_dir: Path,
    key_of: Callable[[RunConfig], str],
    force: bool,
) -> StudyState:
    """What a study's table will hold: the configurations asked for, those in the table on
    disk and those in the cache, each with its record where one is valid."""
    st = StudyState(study)

    def add(cfg: RunConfig) -> str:
        if cfg.identity not in st.keys:
            st.keys[cfg.identity] = key_of(cfg)
            st.configs[st.keys[cfg.identity]] = cfg
        return st.keys[cfg.identity]

    for cfg in grid:
        add(cfg)
    asked = set(st.configs)
    folder = results.cache_dir(results_dir, prof.dataset, study, prof.name)

    # The cache: every valid entry whose key is what this code computes for it.
    for path in sorted(folder.glob("*.json")):
        if force and path.stem in asked:
            continue
        try:
            entry = results.read_cached(path)
        except results.OutdatedResults:
            continue  # its key hashes the old version too: it can only be stale
        if entry is None:
            continue
        cfg = _config_from(entry["config"], study, prof)
        if cfg is None or key_of(cfg) != path.stem:
            continue  # another configuration's settings, data or code: stale, left alone
        key = add(cfg)
        extra = {k: entry.get(k) for k in CONFIG_KEYS}
        st.records[key] = Record([r | extra for r in entry["rows"]], entry["bins"])

    # The table on disk: its rows are kept, so no run shrinks it.
    try:
        table, reliability = _read_table(results_dir, prof, study, force)
    except _Unreadable as bad:
        table = reliability = None
        path = results.table_paths(results_dir, prof.dataset, study, prof.name)[0]
        lost = 0
        for listed in bad.listed:
            try:
                method, seed, j, p, d, *schedule = listed
                own = dict(zip(SCHEDULE, schedule))
                key = key_of(run_config(study, prof.dataset, prof.name, method, seed, j, p, d, **own))
            except (ValueError, TypeError, KeyError):
                key = None
            lost += key not in st.records and key not in asked
        if lost and not force:
            raise ValueError(
                f"{path} is unreadable ({bad.err}), and {lost} of the configurations its provenance lists are "
                f"not in the cache: restore it (e.g. `git checkout {path}`), or re-run with --force to rebuild "
                "it without them"
            ) from None
        warnings.warn(f"rebuilding {path} from the cache: {bad.err}", stacklevel=3)
        st.dirty = True
    if table is not None:
        st.previous = table.attrs["provenance"]
        st.dirty = reliability is None  # rebuilt below
        stale = 0
        for key, rows in table.groupby("config_key", sort=False):
            cfg = _config_from(rows.iloc[0].to_dict() | {"study": study, "profile": prof.name}, study, prof)
            if cfg is None or key_of(cfg) != key:
                stale += 1
                continue
            add(cfg)
            st.on_disk.add(key)
            if key in st.records or (force and key in asked):
                continue
            bins = None if reliability is None else reliability.get(key)
            st.records[key] = Record(_record_rows(rows), bins)
        if stale:
            path = results.table_paths(results_dir, prof.dataset, study, prof.name)[0]
            if not force:
                raise ValueError(
                    f"{path} holds {stale} configuration(s) computed with other settings, data or numerics "
                    f"than this run uses (their keys differ; this process computes in mode {numerics.mode()}, "
                    "see L2D_NUMERICS): re-run with --force to replace the table by what this run computes, "
                    "or use another --results-dir"
                )
            warnings.warn(f"--force: dropping {stale} configuration(s) of other settings from {path}", stacklevel=3)
            st.dirty = True
    if not force:
        _reuse_other_profiles(st, asked, prof, results_dir, key_of)
    missing_bins = [k for k, r in st.records.items() if r.bins is None]
    if missing_bins:  # its reliability table was unreadable and the cache lacks them
        path = results.reliability_path(results_dir, prof.dataset, study, prof.name)
        warnings.warn(
            f"{path}: no reliability bins for {len(missing_bins)} configuration(s) outside the cache; recomputing them",
            stacklevel=3,
        )
        for k in missing_bins:
            del st.records[k]
    return st


def _reuse_other_profiles(
    st: StudyState, asked: set[str], prof: Profile, results_dir: Path, key_of: Callable[..., str]
) -> None:
    """Take what is still missing from other profiles' tables where a configuration's settings
    are the same (``quick`` is ``paper`` with 3 seeds): its numbers are a function of its
    settings, not of the profile's name. A row counts only if its key is what this code
    computes for it under its own profile, as for the profile's own table."""
    for other in profiles_of(prof.dataset):
        missing = asked - set(st.records)
        if not missing:
            return
        if other == prof.name:
            continue
        oprof = get_profile(prof.dataset, other)
        try:
            with warnings.catch_warnings():  # its own runs rebuild what it lacks, not this one
                warnings.simplefilter("ignore")
                table, reliability = _read_table(results_dir, oprof, st.study, force=False)
        except (results.OutdatedResults, _Unreadable):  # its own runs deal with it
            continue
        if table is None or reliability is None:
            continue
        wanted = {st.configs[k].identity: k for k in missing}
        taken = 0
        for key, rows in table.groupby("config_key", sort=False):
            cfg = _config_from(rows.iloc[0].to_dict() | {"study": st.study, "profile": prof.name}, st.study, prof)
            if cfg is None or cfg.identity not in wanted or key not in reliability:
                continue
            theirs = replace(cfg, profile=other)
            if theirs.as_dict(oprof)["settings"] != cfg.as_dict(prof)["settings"] or key_of(theirs, oprof) != key:
                continue
            st.records[wanted[cfg.identity]] = Record(_record_rows(rows), reliability[key])
            taken += 1
        if taken:
            st.reused[results.table_paths(results_dir, oprof.dataset, st.study, other)[0].name] = taken
            st.dirty = True


def _record_rows(rows: pd.DataFrame) -> list[dict]:
    """A configuration's table rows as a record's (a column older tables lack is NaN)."""
    return rows.reindex(columns=[*ROW_KEYS, *CONFIG_KEYS]).to_dict("records")


class _Unreadable(ValueError):
    """An unreadable table whose provenance still lists its configurations."""

    def __init__(self, err: ValueError, listed: list) -> None:
        super().__init__(str(err))
        self.err, self.listed = err, listed


def _listed_configurations(json_path: Path) -> list:
    """The configurations a table's provenance lists ([method, seed, J, p, data seed]), or []."""
    try:
        listed = json.loads(json_path.read_text()).get("configurations", [])
    except (OSError, ValueError, AttributeError):
        return []
    return listed if isinstance(listed, list) else []


def _read_table(results_dir: Path, prof: Profile, study: str, force: bool) -> tuple[pd.DataFrame | None, dict | None]:
    """The table on disk (provenance in ``attrs``) and its reliability bins by key; None
    where absent or unreadable (a warning says what is rebuilt). A table of another results
    version is an error unless ``force``."""
    csv_path = results.table_paths(results_dir, prof.dataset, study, prof.name)[0]
    try:
        table, provenance = results.load_table(results_dir, prof.dataset, study, prof.name)
        if "config_key" not in table.columns:
            raise results.OutdatedResults(
                f"{csv_path} has no config_key column (written by older code): re-run with --force"
            )
    except FileNotFoundError:
        return None, None
    except results.OutdatedResults as err:
        if not force:
            raise
        warnings.warn(f"--force: replacing an outdated table ({err})", stacklevel=3)
        return None, None
    except ValueError as err:
        listed = _listed_configurations(csv_path.with_suffix(".json"))
        if listed:  # the cache must hold what the unreadable table held, or nothing is written
            raise _Unreadable(err, listed) from err
        warnings.warn(f"rebuilding {csv_path} from the cache: {err}", stacklevel=3)
        return None, None
    table.attrs["provenance"] = provenance
    try:
        bins, _ = results.load_table(results_dir, prof.dataset, study, prof.name, reliability=True)
        bins = bins[["config_key", *BIN_KEYS]]
    except (FileNotFoundError, ValueError, KeyError) as err:
        why = "missing" if isinstance(err, FileNotFoundError) else f"unreadable: {err}"
        path = results.reliability_path(results_dir, prof.dataset, study, prof.name)
        warnings.warn(f"{path} is {why}; rebuilding it from the cache", stacklevel=3)
        return table, None
    by_key = {
        k: g[list(BIN_KEYS)].astype(object).where(g[list(BIN_KEYS)].notna(), None).to_dict("records")
        for k, g in bins.groupby("config_key", sort=False)
    }
    return table, by_key


def _config_from(config: dict, study: str, prof: Profile) -> RunConfig | None:
    """The configuration a cache entry or a table row describes, rebuilt by this code (None
    if it is not one of this study and profile). Table rows hold NaN where entries hold None."""

    def optional(value, kind):
        return None if value is None or pd.isna(value) else kind(value)

    try:
        if config["study"] != study or config["profile"] != prof.name or config["dataset"] != prof.dataset:
            return None
        return run_config(
            study,
            prof.dataset,
            prof.name,
            config["method"],
            int(config["seed"]),
            int(config["num_experts"]),
            optional(config["expert_p"], float),
            optional(config.get("data_seed"), int),
            max_epochs=optional(config.get("max_epochs"), int),
            lr=optional(config.get("lr"), float),
            patience=optional(config.get("patience"), int),
        )
    except (KeyError, TypeError, ValueError):
        return None


def assemble(st: StudyState, data_of: Callable[[int | None], Dataset]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The study table and its reliability bins, in (method, data seed, seed, J or p) order."""

    def order(key: str) -> tuple:  # a value of None first
        c = st.configs[key]
        keys = (c.data_seed, c.max_epochs, c.lr, c.patience, c.seed, c.num_experts, c.expert_p)
        return (METHODS.index(c.method), *(-1 if v is None else v for v in keys))

    rows, bins = [], []
    for key in sorted(st.records, key=order):
        c, rec = st.configs[key], st.records[key]
        ident = dict(zip(IDENTITY, c.identity))
        rows += [
            ident
            | {
                "dataset": c.dataset,
                "profile": c.profile,
                "expert_kind": c.experts[r["expert"]].kind,
                "data_label": data_of(c.data_seed).label,
                "config_key": key,
                **r,
            }
            for r in rec.rows
        ]
        bins += [ident | {"expert_kind": c.experts[b["expert"]].kind, "config_key": key, **b} for b in rec.bins]
    return (pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(bins, columns=RELIABILITY_COLUMNS))


def make_provenance(
    st: StudyState, table: pd.DataFrame, prof: Profile, data_of: Callable[[int | None], Dataset], env: dict, run: dict
) -> dict:
    """What the table holds, and every run that changed it (the latest run's fields on top).
    With several data draws, the data label and fingerprint are per draw."""
    configs = [st.configs[k] for k in dict.fromkeys(table["config_key"])]
    draws = sorted({c.data_seed for c in configs}, key=lambda d: -1 if d is None else d)
    label = {str(d): data_of(d).label for d in draws}
    fingerprint = {str(d): data_of(d).fingerprint for d in draws}
    runs = list((st.previous or {}).get("runs", []))
    runs.append(run | {"num_computed": st.computed} | ({"reused_from": st.reused} if st.reused else {}))
    axis = AXES[st.study]
    return {
        "results_version": results.RESULTS_VERSION,
        "study": st.study,
        "dataset": prof.dataset,
        "profile": prof.name,
        "seeds": sorted({c.seed for c in configs}),
        "methods": [m for m in METHODS if any(c.method == m for c in configs)],
        axis.column: sorted({getattr(c, axis.column) for c in configs}),
        "data_seeds": [d for d in draws if d is not None],
        "configurations": [list(c.identity[1:]) for c in configs],
        "configuration_fields": list(IDENTITY[1:]),
        "num_configs": len(configs),
        "num_computed": st.computed,
        "num_rows": len(table),
        "settings": configs[0].as_dict(prof)["settings"],
        "data_label": label.popitem()[1] if len(label) == 1 else label,
        "data_fingerprint": fingerprint.popitem()[1] if len(fingerprint) == 1 else fingerprint,
        "config_keys_sha": hashlib.sha256(" ".join(sorted(table["config_key"].unique())).encode()).hexdigest()[:16],
        **env,
        **{k: run[k] for k in ("command", "device", "wall_seconds", "wall_seconds_covers")},
        "runs": runs,
        "reference": _reference_summary(table, axis.column),
        "human_labels": crowds.summary(data_of(draws[0])),
    }


def _reference_summary(table: pd.DataFrame, x: str) -> dict | None:
    """What the results are measured against, for one data draw (MoG): the Bayes-optimal
    accuracies and, per x, the mean ECE noise floor over the experts."""
    if table["bayes_classifier_accuracy"].isna().all() or table["data_seed"].nunique(dropna=False) > 1:
        return None
    per_x = table.groupby(x)[["bayes_system_accuracy", "ece_noise_floor"]].mean()
    return {
        "bayes_classifier_accuracy": float(table["bayes_classifier_accuracy"].iloc[0]),
        "bayes_system_accuracy": {str(k): float(v) for k, v in per_x["bayes_system_accuracy"].items()},
        "ece_noise_floor_mean_over_experts": {str(k): float(v) for k, v in per_x["ece_noise_floor"].items()},
    }
