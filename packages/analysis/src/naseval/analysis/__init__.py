"""naseval.analysis: statistics, rank correlation, rank changes, the sharing study, tables, figures.

Pure functions on numbers: results in; numbers, tables and figures out. Never imports torch,
never touches MLflow, never prints. Bad input raises `AnalysisError` (a ValueError).
Perplexity is lower-is-better throughout; spreads over seeds are sample std (ddof=1).
"""

from naseval.analysis.compare import (
    ComparisonStudy,
    SeedRun,
    TableRow,
    compare_policies,
    policy_row,
    real_best_row,
    versus_random,
)
from naseval.analysis.errors import AnalysisError
from naseval.analysis.figures import (
    DPI,
    perplexity_curves_figure,
    rank_changes_figure,
    save_figure,
    sharing_figure,
    tau_distribution_figure,
)
from naseval.analysis.ground_truth import GroundTruth
from naseval.analysis.ranking import (
    average_ranks,
    kendall_tau,
    positions,
    rank_changes,
    spearman_rho,
    top_k_overlap,
    true_rank_of_ws_top1,
)
from naseval.analysis.sharing import CountGroup, SharingStudy, sharing_count, sharing_study
from naseval.analysis.stats import (
    STD_DDOF,
    Interval,
    RandomComparison,
    Summary,
    bootstrap_mean_ci,
    bootstrap_mean_difference_ci,
    compare_to_random,
    format_mean_std,
    mann_whitney,
    prob_lower,
    summarize,
    wilcoxon_signed_rank,
)
from naseval.analysis.tables import (
    Table,
    comparison_table,
    ground_truth_table,
    save_table,
    sharing_table,
    versus_random_table,
    ws_ranking_table,
)
from naseval.analysis.ws_ranking import (
    PAPER_MEAN_TAU,
    SeedRanking,
    WSRankingStudy,
    ws_ranking_study,
)

__version__ = "0.1.0"

__all__ = [
    "save_table",
    "tau_distribution_figure",
    "sharing_figure",
    "save_figure",
    "rank_changes_figure",
    "perplexity_curves_figure",
    "DPI",
    "PAPER_MEAN_TAU",
    "STD_DDOF",
    "AnalysisError",
    "ComparisonStudy",
    "CountGroup",
    "GroundTruth",
    "Interval",
    "RandomComparison",
    "SeedRanking",
    "SeedRun",
    "SharingStudy",
    "Summary",
    "Table",
    "TableRow",
    "WSRankingStudy",
    "__version__",
    "average_ranks",
    "bootstrap_mean_ci",
    "bootstrap_mean_difference_ci",
    "compare_policies",
    "compare_to_random",
    "comparison_table",
    "format_mean_std",
    "ground_truth_table",
    "kendall_tau",
    "mann_whitney",
    "policy_row",
    "positions",
    "prob_lower",
    "rank_changes",
    "real_best_row",
    "sharing_count",
    "sharing_study",
    "sharing_table",
    "spearman_rho",
    "summarize",
    "top_k_overlap",
    "true_rank_of_ws_top1",
    "versus_random",
    "versus_random_table",
    "wilcoxon_signed_rank",
    "ws_ranking_study",
    "ws_ranking_table",
]
