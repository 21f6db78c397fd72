"""``python -m odia_stream.cli`` works like the ``odia`` command (and ``python -m odia``).

The one module of the domain that reaches the application layer, and only when run as a
program: importing it imports nothing, and no module imports it (tests/test_layers.py checks both).
"""

if __name__ == "__main__":
    from odia.cli import main

    main()
