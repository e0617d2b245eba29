"""`sieve load`: checks the options, finds or makes the pool, loads the file, says what it did."""

from __future__ import annotations

import json

import click
import requests

from sieve.client import ApiError, Client
from sieve.load.formats import FileError, open_source
from sieve.load.loader import LoadError, find_pool, load


def _json_option(text: str | None, option: str) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"not JSON: {error}", param_hint=option) from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint=option)
    return value


def _problem(error: ApiError) -> str:
    """The API's problem as one line: its detail and the field at fault."""
    return f"{error.said} ({error.field})" if error.field else error.said


def run_load(
    file,
    *,
    url,
    api_key,
    pool_id,
    name,
    file_format,
    ids_file,
    batch_items,
    model,
    strategy,
    featurizer,
    quiet,
):
    if (pool_id is None) == (name is None):
        raise click.UsageError("give the pool: --pool ID, or --name NAME (made if no pool has that name)")
    options = {
        key: value
        for key, value in {
            "model": _json_option(model, "--model"),
            "strategy": strategy,
            "featurizer": _json_option(featurizer, "--featurizer"),
        }.items()
        if value is not None
    }
    if options and pool_id is not None:
        raise click.UsageError("--model, --strategy and --featurizer set up a new pool: they go with --name")
    try:
        source = open_source(file, file_format, ids_file)
        with Client(url, api_key=api_key) as client:
            if name is not None:
                pool_id = find_pool(client, name)
                if pool_id is not None and options:
                    click.echo(f"pool {pool_id} is named {name!r} already: loading into it as it is", err=True)
            create = {"name": name, **options} if pool_id is None else None
            result = load(client, source, pool_id, create=create, batch_items=batch_items, quiet=quiet)
    except (FileError, LoadError) as error:
        raise click.ClickException(str(error)) from None
    except ApiError as error:
        raise click.ClickException(f"{error.method} {error.url}: {error.status}: {_problem(error)}") from None
    except requests.RequestException as error:
        raise click.ClickException(f"cannot reach the API at {url}: {error}") from None
    # The pool id alone on stdout, for `POOL=$(sieve load ...)`; what was done on stderr, with the progress bar.
    click.echo(
        f"pool {result.pool_id}{' (created)' if result.created else ''}: {result.sent} items sent, "
        f"{result.skipped} skipped (already in the pool), {result.taught} labels taught, in {result.seconds:.1f} s "
        f"({result.items_per_second:,.0f} items/s)",
        err=True,
    )
    click.echo(result.pool_id)
    return result
