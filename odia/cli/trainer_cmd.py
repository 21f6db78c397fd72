"""``odia trainer run|trigger``: the trainer worker, and a manual retrain trigger."""

from __future__ import annotations

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
    from kafka_runtime.publishing import PublishError, publish_model
    from odia_stream.clustering.factory import open_learner_view
    from odia_stream.clustering.triggers import manual_trigger
    from odia_stream.settings import get_settings

    s = get_settings()
    with open_learner_view(s) as view:
        trigger = manual_trigger(view, app)
    try:
        publish_model(s.kafka, s.topics.retrain_triggers.name, trigger, key=app)
    except PublishError as exc:
        typer.echo(f"could not deliver the trigger: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"published {trigger.trigger_id} to {s.topics.retrain_triggers.name}")
