"""``python -m trainer``: the trainer worker with settings from the ``ODIA_`` environment."""

from trainer.worker import main

if __name__ == "__main__":
    main()
