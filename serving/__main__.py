"""``python -m serving``: the serving consumer with settings from the ``ODIA_`` environment."""

from serving.app import main

if __name__ == "__main__":
    main()
