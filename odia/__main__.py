"""``python -m odia`` works like the ``odia`` command."""

from odia.cli import main

if __name__ == "__main__":
    main()
