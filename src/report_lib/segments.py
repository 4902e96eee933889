"""Customer segments: RFM quintile scores with named segments, and k-means clusters on the same three figures.

Input: one row per customer with recency (days since the last purchase), frequency (orders) and monetary (net spend),
as ``report_lib.warehouse.loaders.customers.load_customer_rfm`` returns them. Every function returns a new frame.

Scoring (``score_rfm``):
- each figure becomes a score 1..5, 5 being best: fewest days since the last purchase, most orders, most spend;
- ties are broken by customer id (customers are sorted by id, then ranked with ``rank(method="first")``), so the
  scores do not depend on the input's row order; the ranks are then cut into quintiles with ``pd.qcut``;
- with fewer than 5 scored customers quintiles do not exist: scores are spread evenly and symmetrically,
  ``1 + floor(5 * (rank - 0.5) / n)``: one customer scores 3, two score 2 and 4, three 1, 3, 5, four 1, 2, 4, 5;
- customers whose net spend is zero or negative (they returned as much as, or more than, they bought in the
  period) are not scored: their scores are missing and ``name_segments`` puts them in the "Returns only" segment.
  Scoring them would put them among the lowest spenders and distort the quintiles of everybody else.

Named segments (``name_segments``): see ``SEGMENT_RULES`` and ``segment_rules_table()``; the first rule that
matches wins. Clusters (``cluster_customers``): k-means on standardised log1p(recency, frequency, monetary), k
chosen by the silhouette on a seeded sample; cluster 0 is the cluster with the highest mean spend.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from report_lib.errors import DataValidationError, require_columns

log = logging.getLogger(__name__)

SCORE_COLUMNS = ("r_score", "f_score", "m_score")
RETURNS_ONLY = "Returns only"
NEW = "New"
NOT_CLUSTERED = -1


@dataclass(frozen=True)
class SegmentRule:
    """A named segment: the inclusive score ranges (low, high) a scored customer must fall in."""

    name: str
    recency: tuple[int, int]
    frequency: tuple[int, int]
    monetary: tuple[int, int]
    description: str


# First match wins. "Returns only" (net spend <= 0) and "New" (first purchase within new_days of the period's end)
# are decided before these score rules; the last two rules together cover every remaining score combination.
SEGMENT_RULES: tuple[SegmentRule, ...] = (
    SegmentRule("Champions", (4, 5), (4, 5), (4, 5), "bought recently, buy often and spend the most"),
    SegmentRule("Loyal", (3, 5), (4, 5), (1, 5), "buy often and not long ago"),
    SegmentRule("Potential loyalist", (4, 5), (1, 3), (1, 5), "recent customers with few orders so far"),
    SegmentRule("At risk", (1, 2), (3, 5), (1, 5), "used to buy often, but not lately"),
    SegmentRule("Need attention", (3, 3), (1, 3), (1, 5), "middling recency, few orders"),
    SegmentRule("Hibernating", (1, 2), (1, 2), (1, 5), "last bought long ago, few orders"),
)
SEGMENT_ORDER = (NEW, *(rule.name for rule in SEGMENT_RULES), RETURNS_ONLY)


def segment_rules_table(*, new_days: int = 30) -> pd.DataFrame:
    """The naming rules as a table for reports: segment, R, F, M ranges and what the segment means."""
    rows = [
        {"segment": RETURNS_ONLY, "R": "", "F": "", "M": "", "meaning": "net spend zero or negative (returns)"},
        {"segment": NEW, "R": "", "F": "", "M": "", "meaning": f"first purchase within the last {new_days} days"},
    ]
    for rule in SEGMENT_RULES:
        ranges = {key: f"{low}-{high}" for key, (low, high) in zip("RFM", _rule_ranges(rule), strict=True)}
        rows.append({"segment": rule.name, **ranges, "meaning": rule.description})
    return pd.DataFrame(rows)


def _rule_ranges(rule: SegmentRule) -> tuple[tuple[int, int], ...]:
    return rule.recency, rule.frequency, rule.monetary


def score_rfm(
    rfm: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    recency_col: str = "recency_days",
    frequency_col: str = "frequency",
    monetary_col: str = "monetary",
) -> pd.DataFrame:
    """``rfm`` with r_score, f_score, m_score (Int64, 1..5; missing for net spend <= 0) and rfm_code (e.g. 545)."""
    _validate_rfm(rfm, customer_col, recency_col, frequency_col, monetary_col)
    positional = rfm.reset_index(drop=True)  # any index (even repeated labels) is kept as it was in the result
    scored = _by_customer(positional.loc[positional[monetary_col] > 0], customer_col)
    result = rfm.copy()
    for name, column, sign in zip(SCORE_COLUMNS, (recency_col, frequency_col, monetary_col), (-1, 1, 1), strict=True):
        scores = quintile_scores(sign * scored[column].astype("float64"))
        result[name] = scores.reindex(positional.index).astype("Int64").to_numpy()
    result["rfm_code"] = 100 * result["r_score"] + 10 * result["f_score"] + result["m_score"]
    return result


def _by_customer(rfm: pd.DataFrame, customer_col: str) -> pd.DataFrame:
    """Rows in customer order (the loader's order already: then no sort), so rank ties break by customer id."""
    if rfm[customer_col].is_monotonic_increasing:
        return rfm
    return rfm.sort_values(customer_col, kind="stable")


def quintile_scores(values: pd.Series) -> pd.Series:
    """Scores 1..5 from the quintile of each value's rank (higher value, higher score), ties by position."""
    count = len(values)
    ranks = values.rank(method="first")
    if count >= 5:
        cut = pd.qcut(ranks, 5, labels=False)
        return (cut + 1).astype("int64")
    spread = 1 + np.floor(5 * (ranks.to_numpy() - 0.5) / max(count, 1))
    return pd.Series(spread.astype("int64"), index=values.index)


def _validate_rfm(rfm: pd.DataFrame, customer_col: str, *numeric_cols: str) -> None:
    require_columns(rfm.columns, (customer_col, *numeric_cols), what="RFM table")
    for column in numeric_cols:
        if not pd.api.types.is_numeric_dtype(rfm[column].dtype) or pd.api.types.is_bool_dtype(rfm[column].dtype):
            raise DataValidationError(
                f"RFM column {column!r} has dtype {rfm[column].dtype}; expected numbers. "
                "Convert it with pd.to_numeric or pass the right column name.",
                details={"column": column, "dtype": str(rfm[column].dtype)},
            )
        if rfm[column].isna().any():
            raise DataValidationError(
                f"RFM column {column!r} has {int(rfm[column].isna().sum())} missing values; expected a value for "
                "every customer. Drop or fill those rows first.",
                details={"column": column},
            )
    if rfm[customer_col].duplicated().any():
        raise DataValidationError(
            f"RFM table has repeated {customer_col!r} values; expected one row per customer. "
            "Aggregate the lines per customer first (load_customer_rfm does).",
            details={"column": customer_col},
        )


def name_segments(
    scored: pd.DataFrame,
    *,
    new_days: int = 30,
    recency_col: str = "recency_days",
    monetary_col: str = "monetary",
    first_col: str = "first_day",
    last_col: str = "last_day",
) -> pd.DataFrame:
    """``scored`` (from score_rfm) with a ``segment`` column named by the rules of SEGMENT_RULES.

    "New": the first purchase is at most ``new_days`` days before the period's end. The period's end is not a
    column: each customer's tenure is ``recency + (last_day - first_day)`` days.
    """
    require_columns(scored.columns, (*SCORE_COLUMNS, recency_col, monetary_col, first_col, last_col), what="scores")
    tenure = (scored[recency_col] + (scored[last_col] - scored[first_col]).dt.days).to_numpy()
    segment = np.full(len(scored), None, dtype=object)
    segment[(scored[monetary_col] <= 0).to_numpy()] = RETURNS_ONLY
    segment[pd.isna(segment) & (tenure <= new_days)] = NEW
    scores = {column: scored[column].fillna(0).to_numpy(dtype="int64") for column in SCORE_COLUMNS}
    for rule in SEGMENT_RULES:
        matches = pd.isna(segment)
        for column, (low, high) in zip(SCORE_COLUMNS, _rule_ranges(rule), strict=True):
            matches &= (scores[column] >= low) & (scores[column] <= high)
        segment[matches] = rule.name
    if pd.isna(segment).any():  # only reachable with hand-made scores outside 1..5
        raise DataValidationError(
            f"{int(pd.isna(segment).sum())} customers have scores outside 1..5; expected score_rfm's output.",
            details={"columns": list(SCORE_COLUMNS)},
        )
    return scored.assign(segment=pd.array(segment, dtype="str"))


def segment_profile(
    segmented: pd.DataFrame,
    *,
    segment_col: str = "segment",
    recency_col: str = "recency_days",
    frequency_col: str = "frequency",
    monetary_col: str = "monetary",
) -> pd.DataFrame:
    """Per segment: customers, share of customers, mean recency/frequency/monetary, revenue and revenue share.

    Named segments come in SEGMENT_ORDER, other labels (cluster numbers) in sorted order after them; segments with no
    customer are left out. Revenue is the net spend, so "Returns only" carries a negative share.
    """
    require_columns(segmented.columns, (segment_col, recency_col, frequency_col, monetary_col), what="segments")
    grouped = segmented.groupby(segment_col, sort=True, observed=True)
    profile = pd.DataFrame(
        {
            "customers": grouped.size(),
            "recency_mean": grouped[recency_col].mean(),
            "frequency_mean": grouped[frequency_col].mean(),
            "monetary_mean": grouped[monetary_col].mean(),
            "revenue": grouped[monetary_col].sum(),
        }
    )
    total_revenue = float(segmented[monetary_col].sum())
    profile.insert(1, "share", profile["customers"] / max(len(segmented), 1))
    profile["revenue_share"] = profile["revenue"] / total_revenue if total_revenue else np.nan
    order = _profile_order(profile.index)
    return profile.loc[order].rename_axis(segment_col).reset_index()


def _profile_order(labels: Iterable[object]) -> list[object]:
    present = list(labels)
    named = [name for name in SEGMENT_ORDER if name in present]
    return named + [label for label in present if label not in named]


@dataclass(frozen=True)
class CustomerClusters:
    """k-means result: ``assignments`` is the input with a ``cluster`` column (-1: net spend <= 0, not clustered),
    ``k`` the number of clusters chosen, ``silhouette`` the (k, silhouette) table the choice was made on."""

    assignments: pd.DataFrame
    k: int
    silhouette: pd.DataFrame


def cluster_customers(
    rfm: pd.DataFrame,
    *,
    k_range: Iterable[int] = range(2, 9),
    seed: int = 0,
    sample_size: int = 2_000,
    customer_col: str = "customer_id",
    recency_col: str = "recency_days",
    frequency_col: str = "frequency",
    monetary_col: str = "monetary",
) -> CustomerClusters:
    """k-means on StandardScaler(log1p(recency, frequency, monetary)), k chosen by the best silhouette.

    The silhouette of each k is computed on a sample of ``sample_size`` customers drawn with ``seed`` (k-means fitted
    on that sample); the chosen k is then fitted on every customer, starting from the sample's centres. Same input
    and seed, same labels. Clusters are numbered by mean spend, 0 the highest. Customers with net spend <= 0 are not
    clustered (cluster -1). Ks that the data cannot support (k >= number of distinct customers in the sample) are
    skipped; when none is left (fewer than 3 customers, or all alike) every clustered customer is in cluster 0, k=1
    (k=0 when there is no customer to cluster).
    """
    columns = (recency_col, frequency_col, monetary_col)
    _validate_rfm(rfm, customer_col, *columns)
    positional = rfm.reset_index(drop=True)
    clustered = _by_customer(positional.loc[positional[monetary_col] > 0], customer_col)
    features = _scaled_log_features(clustered, columns)
    spend = clustered[monetary_col].to_numpy()
    labels, k, silhouette = _fit_clusters(features, spend, list(k_range), seed, sample_size)
    cluster = np.full(len(rfm), NOT_CLUSTERED, dtype="int64")
    cluster[clustered.index.to_numpy()] = labels
    log.info("k-means: %d customers, k=%d", len(clustered), k)
    return CustomerClusters(assignments=rfm.assign(cluster=cluster), k=k, silhouette=silhouette)


def _scaled_log_features(clustered: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    from sklearn.preprocessing import StandardScaler

    raw = clustered.loc[:, list(columns)].to_numpy(dtype="float64")
    if (raw < 0).any():
        negative = [name for i, name in enumerate(columns) if (raw[:, i] < 0).any()]
        raise DataValidationError(
            f"RFM columns {negative} have negative values; expected days since the last purchase and order counts "
            ">= 0. Check that as_of is not before the customers' last purchase.",
            details={"columns": negative},
        )
    if len(raw) == 0:
        return raw
    scaled: np.ndarray = StandardScaler().fit_transform(np.log1p(raw))
    return scaled


def _fit_clusters(
    features: np.ndarray, monetary: np.ndarray, k_range: list[int], seed: int, sample_size: int
) -> tuple[np.ndarray, int, pd.DataFrame]:
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    count = len(features)
    sample = features[np.sort(np.random.default_rng(seed).choice(count, size=min(sample_size, count), replace=False))]
    distinct = len(np.unique(sample, axis=0)) if count else 0
    usable = [k for k in k_range if 2 <= k < min(distinct + 1, len(sample))]
    # one thread: these fits are small, and report workers already run one process per core
    with threadpool_limits(limits=1, user_api="openmp"):
        scores, centres = _silhouettes(sample, usable, seed)
        table = pd.DataFrame({"k": pd.Series(list(scores), dtype="int64"), "silhouette": list(scores.values())})
        if not scores:
            return np.zeros(count, dtype="int64"), min(count, 1), table.astype({"silhouette": "float64"})
        best = max(scores, key=lambda k: (scores[k], -k))
        final = KMeans(n_clusters=best, init=centres[best], n_init=1, random_state=seed).fit(features)
    return _relabel_by_spend(final.labels_, monetary), best, table


def _silhouettes(sample: np.ndarray, ks: list[int], seed: int) -> tuple[dict[int, float], dict[int, np.ndarray]]:
    """Silhouette and centres of k-means on the sample for each k; the distances are computed once for all ks."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import pairwise_distances, silhouette_score

    distances = pairwise_distances(sample) if ks else sample
    scores: dict[int, float] = {}
    centres: dict[int, np.ndarray] = {}
    for k in ks:
        model = KMeans(n_clusters=k, random_state=seed, n_init=4).fit(sample)
        scores[k] = float(silhouette_score(distances, model.labels_, metric="precomputed"))
        centres[k] = model.cluster_centers_
    return scores, centres


def _relabel_by_spend(labels: np.ndarray, monetary: np.ndarray) -> np.ndarray:
    """Cluster numbers in decreasing order of mean spend (ties: the old number), so labels do not depend on k-means."""
    found = np.unique(labels)
    means = [float(monetary[labels == label].mean()) for label in found]
    order = sorted(range(len(found)), key=lambda i: (-means[i], found[i]))
    mapping = np.empty(int(found.max()) + 1, dtype="int64")
    mapping[found[order]] = np.arange(len(found))
    relabelled: np.ndarray = mapping[labels]
    return relabelled
