"""Stored tangram embeddings and the similarity matrix the evaluation's Sim metric reads."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from games.models import Tangram
from models_svc.models import EmbeddingSet, TangramEmbedding
from models_svc.selectors import similarity_matrix
from models_svc.services import store_embeddings
from tests.factories import make_tangrams

pytestmark = pytest.mark.django_db

VECTORS = {
    "page9-0": [1.0, 0.0, 0.0],
    "page9-1": [0.0, 2.0, 0.0],
    "page9-2": [1.0, 1.0, 0.0],
    "page9-3": [-3.0, 0.0, 4.0],
}


def test_no_embeddings_means_no_matrix():
    make_tangrams(4)
    assert similarity_matrix(["page9-0", "page9-1"]) is None


def test_matrix_in_requested_order_matches_scipy():
    make_tangrams(4)
    store_embeddings("clip:/ckpt", "v1", VECTORS)
    order = ["page9-3", "page9-0", "page9-2", "page9-1"]
    expected = 1 - cdist(
        np.array([VECTORS[n] for n in order]), np.array([VECTORS[n] for n in order]), "cosine"
    )
    result = similarity_matrix(order)
    assert result.shape == (4, 4) and result.dtype == np.float64
    np.testing.assert_allclose(result, expected, atol=1e-6)
    assert np.all(np.diag(result) == 1.0)
    # by hand: cos(page9-0, page9-2) = 1/sqrt(2); cos(page9-3, page9-0) = -3/5
    assert result[1, 2] == pytest.approx(2**-0.5, abs=1e-6)
    assert result[0, 1] == pytest.approx(-0.6, abs=1e-6)


def test_missing_tangram_gives_none():
    make_tangrams(5)
    store_embeddings("clip:/ckpt", "v1", VECTORS)
    assert similarity_matrix(["page9-0", "page9-4"]) is None


def test_latest_set_wins_and_adding_rebuilds_cache():
    make_tangrams(5)
    store_embeddings("clip:/old", "v1", VECTORS)
    store_embeddings("clip:/new", "v2", {"page9-0": [0, 1, 0], "page9-1": [0, 1, 0]})
    np.testing.assert_allclose(
        similarity_matrix(["page9-0", "page9-1"]), np.ones((2, 2)), atol=1e-6
    )
    assert similarity_matrix(["page9-0", "page9-4"]) is None
    store_embeddings("clip:/new", "v2", {"page9-4": [0, 0, 1]})
    np.testing.assert_allclose(
        similarity_matrix(["page9-0", "page9-4"]), [[1.0, 0.0], [0.0, 1.0]], atol=1e-6
    )
    assert EmbeddingSet.objects.get(model_version="v2").names == ["page9-0", "page9-1", "page9-4"]


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        ({"page9-0": [1, 0], "nope": [0, 1]}, "unknown tangram"),
        ({"page9-0": [1, 0], "page9-1": [0, 1, 0]}, "one length"),
        ({"page9-0": [0, 0]}, "zero or not finite"),
        ({"page9-0": [float("nan"), 1]}, "zero or not finite"),
    ],
)
def test_bad_embeddings_change_nothing(vectors, message):
    make_tangrams(2)
    with pytest.raises(ValueError, match=message):
        store_embeddings("clip:/x", "v1", vectors)
    assert not EmbeddingSet.objects.exists() and not TangramEmbedding.objects.exists()
    assert Tangram.objects.count() == 2
