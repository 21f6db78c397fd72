"""Checking calls: AST match against the large model's calls (the evaluation gate), validation
against the offered tools' schemas (before serving), and the JSON Schema that constrains the
small model's output to a well-formed call of an offered tool."""

from odia_stream.evaluation.ast_match import (
    MatchResult,
    ast_accuracy,
    ast_match,
    normalize_text,
    values_equal,
)
from odia_stream.evaluation.call_validation import CallIssue, ValidationResult, validate_call
from odia_stream.evaluation.output_schema import AliasLookup, arguments_schema, build_output_schema
from odia_stream.evaluation.tool_schema import ToolSchemaError, normalize_schema, parameters_schema

__all__ = [
    "AliasLookup",
    "CallIssue",
    "MatchResult",
    "ToolSchemaError",
    "ValidationResult",
    "arguments_schema",
    "ast_accuracy",
    "ast_match",
    "build_output_schema",
    "normalize_schema",
    "normalize_text",
    "parameters_schema",
    "validate_call",
    "values_equal",
]
