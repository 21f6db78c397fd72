"""``odia trainer run|trigger``: the trainer worker, and a manual retrain trigger."""

from __future__ import annotations

import uuid

import typer

trainer_app = typer.Typer(help="The trainer worker (LoRA distillation, gate, adapter registry).", no_args_is_help=True)


@trainer_app.command("run")
def trainer_run(loglevel: str = typer.Option("info", help="Log level.")) -> None:
    """Consume retrain triggers and publish promoted adapters as ModelUpdates (until Ctrl-C)."""
    from trainer.worker import run

    run(loglevel=loglevel)


@trainer_app.command("trigger")
def trainer_trigger(app: str = typer.Option("default", help="App the trigger is for.")) -> None:
    """Publish a manual RetrainTrigger (the trainer retrains on the current learner state)."""
    from confluent_kafka import Producer

    from odia_stream.clustering.factory import open_learner_view
    from odia_stream.settings import get_settings
    from schemas import RetrainTrigger

    s = get_settings()
    with open_learner_view(s) as view:
        summary = view.summary()
        trigger = RetrainTrigger(
            trigger_id=f"manual-{uuid.uuid4().hex[:12]}", app=app, reason="manual", new_examples=0,
            total_examples=summary.training_examples, simple_clusters=summary.simple,
            store_version=view.state_version, embedder_id=view.embedder_id or "unknown",
        )
    p = Producer({"bootstrap.servers": s.kafka.bootstrap_servers})
    p.produce(s.topics.retrain_triggers.name, key=app.encode(), value=trigger.model_dump_json())
    if p.flush(15):
        typer.echo("could not deliver the trigger (is the broker up?)", err=True)
        raise typer.Exit(1)
    typer.echo(f"published {trigger.trigger_id} to {s.topics.retrain_triggers.name}")
