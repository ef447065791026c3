"""What the Dagster UI shows of every asset, applied in one place (``lakehouse.definitions``):
owners (a team per domain), code references to the lines that define or write each asset, and
the column schema of every bronze, silver and quarantine table, derived from the Polars schemas
the transforms already write with.
"""

import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from lakehouse import settings
from lakehouse.defs.movies.checks import SILVER_TABLES as MOVIES_SILVER
from lakehouse.lake import table_docs
from lakehouse.lake.snapshots import QUARANTINE_TABLE as MOVIES_QUARANTINE
from lakehouse.lake.snapshots import write_quarantine
from lakehouse.load import telegram as telegram_tables
from lakehouse.load import twitter as twitter_tables
from lakehouse.load.tmdb import REQUEST_LOG as TMDB_REQUEST_LOG
from lakehouse.sources.telegram_landing import RAW_WEBHOOK
from lakehouse.sources.telegram_webhook import WebhookReceiver
from lakehouse.sources.twitter import RAW_STREAM, stream_writer
from lakehouse.transforms import imdb, sentiment, telegram, tmdb, twitter

# The group of an asset is its domain; the domain's team owns it.
OWNERS = {"telegram": "team:telegram", "twitter": "team:twitter", "movies": "team:movies",
          "maintenance": "team:platform"}

# Columns every layer shares, described once.
COLUMN_DESCRIPTIONS = {
    "_source_file": "Landing-zone key of the raw file the row came from.",
    "_record_index": "Position of the record within its raw file.",
    "_ingested_at": "When the raw file landed (from its name), so a re-load gives the same rows.",
    "reason": "Why the record was set aside.",
    "record": "The record as received.",
    "raw_record": "The line as received.",
    "record_index": "Line number of the record within its raw file.",
}

# Tables whose columns are fixed by a Polars schema. silver/csv_drops is absent: each CSV drop
# becomes its own table (silver/csv_<spec>) with the columns of its file.
TABLE_SCHEMAS: dict[dg.AssetKey, Mapping[str, pl.DataType]] = {
    dg.AssetKey(telegram_tables.BRONZE): telegram.BRONZE_SCHEMA,
    dg.AssetKey(telegram_tables.QUARANTINE): telegram.QUARANTINE_SCHEMA,
    dg.AssetKey(telegram_tables.SILVER): telegram.SILVER_SCHEMA,
    dg.AssetKey(twitter_tables.BRONZE): twitter.BRONZE_SCHEMA,
    dg.AssetKey(twitter_tables.QUARANTINE): twitter.QUARANTINE_SCHEMA,
    dg.AssetKey(twitter_tables.TWEETS): twitter.TWEETS_SCHEMA,
    dg.AssetKey(twitter_tables.USERS): twitter.USERS_SCHEMA,
    dg.AssetKey(twitter_tables.HASHTAGS): twitter.HASHTAGS_SCHEMA,
    dg.AssetKey(twitter_tables.MENTIONS): twitter.MENTIONS_SCHEMA,
    dg.AssetKey(twitter_tables.URLS): twitter.URLS_SCHEMA,
    dg.AssetKey(twitter_tables.SENTIMENT): sentiment.SENTIMENT_SCHEMA,
    dg.AssetKey(twitter_tables.MEDIA): twitter.MEDIA_SCHEMA,
    dg.AssetKey(twitter_tables.MATCHING_RULES): twitter.MATCHING_RULES_SCHEMA,
    dg.AssetKey(["bronze", TMDB_REQUEST_LOG]): tmdb.TMDB_REQUEST_LOG_SCHEMA,
    dg.AssetKey(["quarantine", MOVIES_QUARANTINE]): imdb.QUARANTINE_SCHEMA,
    **{dg.AssetKey(["silver", t.name]): t.schema for t in MOVIES_SILVER.values()},
}

# Assets declared as specs, landed by code outside Dagster: their reference is that code.
WRITTEN_BY: dict[dg.AssetKey, Callable[..., Any] | type] = {
    dg.AssetKey(RAW_WEBHOOK): WebhookReceiver,
    dg.AssetKey(RAW_STREAM): stream_writer,
    dg.AssetKey(["quarantine", MOVIES_QUARANTINE]): write_quarantine,
}


def _type_name(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.List):
        return f"list[{_type_name(dtype.inner)}]"
    if isinstance(dtype, pl.Struct):
        return "struct"
    if isinstance(dtype, pl.Datetime):
        return f"timestamp[{dtype.time_unit}, {dtype.time_zone or 'naive'}]"
    return str(dtype).lower()


def table_schema(schema: Mapping[str, pl.DataType],
                 descriptions: Mapping[str, str] = COLUMN_DESCRIPTIONS) -> dg.TableSchema:
    """A Polars schema (and column descriptions) as the UI's column schema."""
    return dg.TableSchema(columns=[
        dg.TableColumn(name, _type_name(dtype), description=descriptions.get(name))
        for name, dtype in schema.items()])


def _repository_path(local: str) -> str:
    return Path(local).resolve().relative_to(settings.PROJECT_DIR).as_posix()


def _code_references(assets: Sequence[Any]) -> dict[dg.AssetKey, dg.CodeReferencesMetadataValue]:
    """Each asset's code references: the lines of its definition (links to the repository when
    ``LAKEHOUSE_GIT_URL`` is set, else local files)."""
    defined = dg.with_source_code_references(
        [a for a in assets if isinstance(a, dg.AssetsDefinition)])
    git_url = settings.git_url()
    if git_url:
        defined = dg.link_code_references_to_git(
            defined, git_url=git_url, git_branch=settings.git_branch(),
            file_path_mapping=dg.AnchorBasedFilePathMapping(
                local_file_anchor=settings.PROJECT_DIR / "pyproject.toml",
                file_anchor_path_in_repository="pyproject.toml"))
    found: dict[dg.AssetKey, dg.CodeReferencesMetadataValue] = {}
    for assets_def in defined:
        assert isinstance(assets_def, dg.AssetsDefinition)
        for key, metadata in assets_def.metadata_by_key.items():
            if "dagster/code_references" in metadata:
                found[key] = metadata["dagster/code_references"]
    for key, writer in WRITTEN_BY.items():
        path, line = inspect.getsourcefile(writer), inspect.getsourcelines(writer)[1]
        assert path is not None
        label = f"landed by {writer.__name__}"
        reference: dg.LocalFileCodeReference | dg.UrlCodeReference = dg.LocalFileCodeReference(
            file_path=path, line_number=line, label=label)
        if git_url:
            tree = "-/tree" if "gitlab" in git_url else "tree"
            reference = dg.UrlCodeReference(
                url=f"{git_url}/{tree}/{settings.git_branch()}/{_repository_path(path)}#L{line}",
                label=label)
        found[key] = dg.CodeReferencesMetadataValue(code_references=[reference])
    return found


def _unique(items: Sequence[Any]) -> list[Any]:
    """Each object once: a module that imports another's assets makes the loader see them
    twice, harmless until mapping turns the two sightings into two distinct copies."""
    return list({id(item): item for item in items}.values())


def with_ui_metadata(loaded: dg.Definitions) -> dg.Definitions:
    """``loaded`` with owners, code references and column schemas on every asset."""
    assets = _unique(list(loaded.assets or []))
    with warnings.catch_warnings():  # code references and spec mapping are marked beta/preview
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        references = _code_references(assets)

    def decorate(spec: dg.AssetSpec) -> dg.AssetSpec:
        metadata: dict[str, Any] = {}
        if spec.key in references:
            metadata["dagster/code_references"] = references[spec.key]
        if spec.key in TABLE_SCHEMAS and "dagster/column_schema" not in spec.metadata:
            # Each column described as the dbt docs and the Delta table itself describe it.
            doc = table_docs.catalogue().get(".".join(spec.key.path))
            metadata["dagster/column_schema"] = table_schema(
                TABLE_SCHEMAS[spec.key], {**COLUMN_DESCRIPTIONS, **(doc.columns if doc else {})})
        owner = OWNERS.get(spec.group_name or "")
        owners = [owner] if owner and owner not in spec.owners else []
        return spec.merge_attributes(metadata=metadata, owners=owners)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        defs = dg.Definitions(
            assets=assets, asset_checks=loaded.asset_checks, jobs=loaded.jobs,
            schedules=loaded.schedules, sensors=loaded.sensors, resources=loaded.resources,
            executor=loaded.executor, loggers=loaded.loggers, metadata=loaded.metadata,
            component_tree=loaded.component_tree)
        return defs.map_asset_specs(func=decorate)
