"""`python -m keras_reg` is the `keras-reg` command."""

from keras_reg.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
