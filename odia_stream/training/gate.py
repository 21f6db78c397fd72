"""The evaluation gate: generate on held-out records and compare with the large model's calls.

Accuracy is the AST match of :func:`~odia_stream.evaluation.ast_match` (function name exact,
required arguments present, no unknown arguments, values equal after light normalisation).
A generation that does not parse, or names a tool that is not offered, counts as a miss.
A candidate is promoted only when its accuracy reaches the gate and is not below the serving
version's accuracy on the same records; it is then trusted only with the functions whose own
accuracy is high enough (:func:`trusted_functions`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from odia_stream.evaluation import ast_match
from odia_stream.generation.calls import call_from, request_for
from odia_stream.generation.protocol import AdapterRef, GenerationResult, SmallGenerator
from odia_stream.prompting import PromptOptions, RenderedPrompt, render_prompt
from odia_stream.stats import wilson_lower_bound
from odia_stream.training.dataset import TrainingRecord


@dataclass(frozen=True)
class EvalReport:
    """AST accuracy of one generator version on a fixed record set, with the reasons of misses."""

    version: str | None
    records: int
    correct: int
    reasons: dict[str, int]
    by_function: dict[str, tuple[int, int]]
    mean_ms: float
    examples: list[dict[str, str]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """Correct / records (0 for an empty set)."""
        return self.correct / self.records if self.records else 0.0

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view."""
        return {
            "version": self.version,
            "records": self.records,
            "correct": self.correct,
            "accuracy": round(self.accuracy, 6),
            "reasons": self.reasons,
            "by_function": {f: {"correct": c, "records": n} for f, (c, n) in sorted(self.by_function.items())},
            "mean_ms_per_record": round(self.mean_ms, 2),
            "examples": self.examples,
        }


def record_prompt(record: TrainingRecord, options: PromptOptions) -> RenderedPrompt:
    """The serving prompt of ``record``: its function given, as the router gives it (formats 2 and 4)."""
    return render_prompt(record.tools, record.history, record.query, options, record.call.name)


def score_result(record: TrainingRecord, prompt: RenderedPrompt, result: GenerationResult) -> tuple[bool, str]:
    """Whether ``result`` (generated for ``prompt``) is ``record``'s call by AST match, and the reason."""
    checked = call_from(result, prompt, check_required=False)
    if checked.call is None:
        return False, (checked.error or "parse").split(":", 1)[0]
    tool = next((t.function for t in record.tools if t.function.name == record.call.name), None)
    match = ast_match(checked.call, record.call, tool)
    return match.ok, match.reason


async def evaluate_generator(
    generator: SmallGenerator,
    records: Sequence[TrainingRecord],
    options: PromptOptions,
    adapter: AdapterRef | None,
    *,
    batch_size: int = 8,
    keep_examples: int = 5,
    max_new_tokens: int | None = None,
) -> EvalReport:
    """Generate a call for every record with ``adapter`` (``None`` = base model zero-shot) and score
    it; ``max_new_tokens`` as serving limits an answer (``OdiaSettings.small_answer_tokens``)."""
    correct = 0
    reasons: Counter[str] = Counter()
    per_fn: dict[str, list[int]] = {}
    total_ms = 0.0
    examples: list[dict[str, str]] = []
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        # The record's function is given, as the router gives it in serving (formats 2 and 4).
        prompts = [record_prompt(r, options) for r in chunk]
        results = await generator.generate([request_for(p, adapter, max_new_tokens) for p in prompts])
        for record, prompt, result in zip(chunk, prompts, results, strict=True):
            total_ms += result.ms / len(chunk)
            ok, reason = score_result(record, prompt, result)
            reasons[reason] += 1
            stat = per_fn.setdefault(record.call.name, [0, 0])
            stat[1] += 1
            if ok:
                correct += 1
                stat[0] += 1
            elif len(examples) < keep_examples:
                examples.append({"query": record.query, "expected": record.call.model_dump_json(), "got": result.text})
    return EvalReport(
        version=adapter.version if adapter else None,
        records=len(records),
        correct=correct,
        reasons=dict(sorted(reasons.items())),
        by_function={f: (c, n) for f, (c, n) in per_fn.items()},
        mean_ms=total_ms / len(records) if records else 0.0,
        examples=examples,
    )


def trusted_functions(report: EvalReport, target: float, z: float) -> tuple[str, ...]:
    """The functions whose held-out accuracy in ``report`` has a Wilson lower bound (at ``z``) at
    or above ``target``: what the small model may be sent (a function without eval records is not).

    >>> r = EvalReport("v", 60, 52, {}, {"play": (40, 40), "stop": (12, 20)}, 0.0)
    >>> trusted_functions(r, 0.9, 1.645)
    ('play',)
    """
    return tuple(sorted(f for f, (ok, n) in report.by_function.items() if n and wilson_lower_bound(ok, n, z) >= target))


@dataclass(frozen=True)
class GateDecision:
    """Whether a candidate may replace the serving version, and why."""

    promote: bool
    reason: str


def gate(candidate: EvalReport, current: EvalReport | None, min_accuracy: float) -> GateDecision:
    """Promote only at or above ``min_accuracy`` and not worse than ``current`` on the same records."""
    if candidate.records == 0:
        return GateDecision(False, "no eval records: nothing to judge the candidate on")
    if candidate.accuracy < min_accuracy:
        return GateDecision(False, f"accuracy {candidate.accuracy:.3f} below the gate {min_accuracy:.3f}")
    if current is not None and candidate.accuracy < current.accuracy:
        return GateDecision(
            False, f"accuracy {candidate.accuracy:.3f} below the serving version {current.version} ({current.accuracy:.3f})"
        )
    return GateDecision(True, f"accuracy {candidate.accuracy:.3f} >= gate {min_accuracy:.3f}"
                        + (f" and >= serving {current.accuracy:.3f}" if current else ""))
