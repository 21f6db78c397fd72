"""Tokens saved by each format option, measured with the small model's real tokenizer on real records."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from odia_stream.prompting import PromptOptions, count_tokens, option_variants, render_record, token_report
from odia.bench.token_bench import run_token_bench
from schemas import FCLogEvent


@pytest.fixture(scope="module")
def sample(snips_events: list[FCLogEvent], hammerbench_events: list[FCLogEvent]) -> list[FCLogEvent]:
    """Real records: SNIPS and HammerBench turns, some with history."""
    hb = [e for e in hammerbench_events if e.call is not None]
    return snips_events[:15] + hb[:: max(1, len(hb) // 45)]


def test_each_option_saves_tokens_where_it_should(sample: list[FCLogEvent], small_tokenizer: Any) -> None:
    report = token_report(sample, small_tokenizer, progress=False)
    v = report["variants"]
    assert report["records"] == len(sample)
    on, off = v["all_on"], v["all_off"]
    # The default writes arguments under their declared names: aliases are a saving it leaves off.
    assert v["default"] == {**v["without_alias_arguments"], "options": v["default"]["options"]}
    assert v["default"]["options"] == {**on["options"], "alias_arguments": False}
    assert on["prompt_tokens_mean"] < 0.8 * off["prompt_tokens_mean"]
    assert on["output_tokens_mean"] < 0.8 * off["output_tokens_mean"]
    # Compact schemas shorten the prompt, not the output.
    assert v["without_compact_schemas"]["prompt_tokens_mean"] > 1.3 * on["prompt_tokens_mean"]
    assert v["without_compact_schemas"]["output_tokens_mean"] == on["output_tokens_mean"]
    # Aliases shorten both (argument names are written in the schema listing and in the call).
    assert v["without_alias_arguments"]["output_tokens_mean"] > on["output_tokens_mean"]
    assert v["without_alias_arguments"]["prompt_tokens_mean"] > on["prompt_tokens_mean"]
    # With the function given (the router's choice) the prompt shows that function alone, and the
    # model writes only its arguments: under half the prompt where conversation turns come along
    # (HammerBench), under a third on single requests (SNIPS), and a shorter output.
    chosen = v["without_function_given"]
    assert on["prompt_tokens_mean"] < chosen["prompt_tokens_mean"] / 2
    assert on["output_tokens_mean"] < chosen["output_tokens_mean"]
    snips = token_report(sample[:15], small_tokenizer, progress=False)["variants"]
    assert snips["all_on"]["prompt_tokens_mean"] < snips["without_function_given"]["prompt_tokens_mean"] / 3
    # The call's style then no longer matters (no function name, no wrapper to write) ...
    assert v["without_no_output_prefix"]["output_tokens_mean"] == on["output_tokens_mean"]
    # ... where, with the model choosing, the keyed form beats a name/arguments call even with its
    # opening prefilled in the prompt, and the usual wrapped call is much longer.
    alt = report["output_alternatives"]
    assert alt["keyed"] == chosen["output_tokens_mean"]
    assert alt["keyed"] < alt["name_arguments_prefilled"] < alt["name_arguments"]
    assert off["output_tokens_mean"] > chosen["output_tokens_mean"] + 10
    for name, row in v.items():
        assert row["prompt_ratio_vs_all_off"] == pytest.approx(
            row["prompt_tokens_mean"] / off["prompt_tokens_mean"], abs=1e-3
        )
        assert row["options"] == {k: getattr(option_variants()[name], k) for k in row["options"]}


def test_counts_follow_the_chat_template(sample: list[FCLogEvent], small_tokenizer: Any) -> None:
    prompt, target = render_record(sample[0], PromptOptions())
    text = small_tokenizer.apply_chat_template(prompt.messages, tokenize=False, add_generation_prompt=True)
    assert count_tokens(prompt.messages, small_tokenizer) == len(
        small_tokenizer.encode(text, add_special_tokens=False)
    )
    assert count_tokens(prompt.messages, small_tokenizer) > sum(
        count_tokens(m["content"], small_tokenizer) for m in prompt.messages
    )
    assert count_tokens(target, small_tokenizer) == len(
        small_tokenizer(target, add_special_tokens=False)["input_ids"]
    )
    bare = copy.copy(small_tokenizer)
    bare.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        count_tokens(prompt.messages, bare)
    with pytest.raises(ValueError, match="no record with a call"):
        token_report(
            [e.model_copy(update={"call": None}) for e in sample[:2]], small_tokenizer, progress=False
        )


def test_token_bench_writes_json_and_plot(datasets_dir: Path, small_tokenizer: Any, tmp_path: Path) -> None:
    hb = datasets_dir / "hammerbench"
    reports = run_token_bench(
        [hb / "en" / "HammerBench_mQmA.json", hb / "zh" / "HammerBench_mQmA.json"],
        small_tokenizer,
        limit=8,
        seed=1,
        out_dir=tmp_path,
    )
    assert set(reports) == {"en/HammerBench_mQmA.json", "zh/HammerBench_mQmA.json"}
    assert all(r["records"] == 8 for r in reports.values())
    written = json.loads((tmp_path / "prompt_tokens.json").read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(reports))
    assert (tmp_path / "prompt_tokens.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
