"""Asynchronous function calling (AsyncLM): calls taken out of a generation while it streams
(:mod:`odia_stream.asynccalls.stream_parser`)."""
