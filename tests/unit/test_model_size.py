"""The bound on a stored model's size counts bytes, so that a model is refused before it is copied whole."""

import pickle

import numpy as np
import pytest

from sieve.storage.models import ModelTooLarge, _Bounded


def test_a_large_array_is_refused_before_its_bytes_are_copied():
    limit = 10 * 2**20
    out = _Bounded(limit)
    with pytest.raises(ModelTooLarge):
        # Pickle hands an 80 MB array over as one buffer whose first dimension is 2,000.
        pickle.dump(np.zeros((2000, 5000)), out, protocol=pickle.HIGHEST_PROTOCOL)
    assert out.tell() < limit
