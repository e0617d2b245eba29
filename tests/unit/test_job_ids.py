"""Which pool a job id names: /v1/jobs answers only for jobs of pools that still exist."""

import pytest

from sieve.job_queue import pool_of_job


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
    ],
)
def test_every_job_id_sieve_makes_names_its_pool(job_id):
    assert pool_of_job(job_id) == "0123abcd"


@pytest.mark.parametrize(
    "job_id", ["os.mkdir", "refresh-0123abcd", "other-0123abcd-1", "refresh-XYZ-1", "refresh-0123abcd-1/../x"]
)
def test_an_id_sieve_does_not_make_names_no_pool(job_id):
    assert pool_of_job(job_id) is None
