"""Online clustering of FC logs: identical-query groups, first-level agglomerative clusters per
micro-batch, and the weighted-centroid second-level merge into the cluster store."""

from odia_stream.clustering.batching import OffsetAlignedBatcher, SourcedItem
from odia_stream.clustering.first_level import agglomerate
from odia_stream.clustering.learner import BatchOutcome, OnlineClusterLearner
from odia_stream.clustering.merge import WeightedCentroidMerger
from odia_stream.clustering.pruning import argument_completeness, select_examples
from odia_stream.clustering.state_db import LearnerStateDB
from odia_stream.clustering.views import LearnerSummary, LearnerView, LearnerViews, TemplateCluster
from odia_stream.keys import cluster_key

__all__ = [
    "BatchOutcome",
    "LearnerStateDB",
    "LearnerSummary",
    "LearnerView",
    "LearnerViews",
    "OffsetAlignedBatcher",
    "OnlineClusterLearner",
    "SourcedItem",
    "TemplateCluster",
    "WeightedCentroidMerger",
    "agglomerate",
    "argument_completeness",
    "cluster_key",
    "select_examples",
]
