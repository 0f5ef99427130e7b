"""Evaluation harness: does a network trained on protected data fail? (umed-protect evaluate)."""

from .api import run_evaluation
from .config import EvaluationConfig, full_config, quick_config
from .harness import evaluate

__all__ = ["EvaluationConfig", "evaluate", "full_config", "quick_config", "run_evaluation"]
