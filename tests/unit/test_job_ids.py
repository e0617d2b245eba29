"""Which pool a job id names: /v1/jobs answers only for jobs of pools that still exist."""

import re

import pytest

from sieve.storage import job_ids
from sieve.storage.job_ids import pool_of_job


@pytest.mark.parametrize(
    "job_id",
    [
        "refresh-0123abcd-7",  # a change's refresh, by version
        "refresh-0123abcd-r1f2e3d4",  # asked again by the sweeper
        "refresh-0123abcd-d1f2e3d4",  # handed on by a refresh that found its pool busy
        "refresh-0123abcd-t1f2e3d4",  # asked for by Label Studio's Start Training
        "lspush-0123abcd-12",
        "lssync-0123abcd-3",
        "lssync-0123abcd-p1f2e3d4c",
        "lstrain-0123abcd-1f2e3d4c",
        "shard-0123abcd-1f2e3d4cx3",  # shard 3 of a sharded refresh's run
    ],
)
def test_every_job_id_sieve_makes_names_its_pool(job_id):
    assert pool_of_job(job_id) == "0123abcd"


@pytest.mark.parametrize(
    "job_id", ["os.mkdir", "refresh-0123abcd", "other-0123abcd-1", "refresh-XYZ-1", "refresh-0123abcd-1/../x"]
)
def test_an_id_sieve_does_not_make_names_no_pool(job_id):
    assert pool_of_job(job_id) is None


def test_the_ids_sieve_makes_keep_their_stored_form():
    # Ids are stored (RQ's job keys, the pools' pending and running marks): their form must not drift.
    assert job_ids.refresh("0123abcd", 7) == "refresh-0123abcd-7"
    assert job_ids.push("0123abcd", 12) == "lspush-0123abcd-12"
    made = {
        r"refresh-0123abcd-r[0-9a-f]{8}": job_ids.recovered_refresh("0123abcd"),
        r"refresh-0123abcd-d[0-9a-f]{8}": job_ids.deferred_refresh("0123abcd"),
        r"refresh-0123abcd-t[0-9a-f]{8}": job_ids.training_refresh("0123abcd"),
        r"lssync-0123abcd-s[0-9a-f]{8}": job_ids.sync("0123abcd"),
        r"lssync-0123abcd-p[0-9a-f]{8}": job_ids.sync("0123abcd", job_ids.SYNC_PERIODIC),
        r"lssync-0123abcd-u[0-9a-f]{8}": job_ids.sync("0123abcd", job_ids.SYNC_SETUP),
        r"lstrain-0123abcd-[0-9a-f]{8}": job_ids.train("0123abcd"),
        r"shard-0123abcd-[0-9a-f]{8}x3": job_ids.shard("0123abcd", job_ids.shard_run(), 3),
    }
    for form, job_id in made.items():
        assert re.fullmatch(form, job_id), (form, job_id)
        assert pool_of_job(job_id) == "0123abcd"
    assert job_ids.recovered_refresh("0123abcd") != job_ids.recovered_refresh("0123abcd")
