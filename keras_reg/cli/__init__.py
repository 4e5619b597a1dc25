"""`keras-reg` (also `python -m keras_reg`): search regularization strength, preview transforms.

User errors (bad flag values, unknown dataset, bad data, a broken --model, stale --out) print
one line to stderr and exit with status 2; a search in which no trial completed exits with 1.
Help, `--version` and argument errors answer before TensorFlow is imported (`_parser`); the
work (`_search`) imports it when it starts.
"""

import sys

from keras_reg.cli._parser import DEFAULTS, UserError, build_parser, parse
from keras_reg.cli._search import load_builder, load_data, run_preview, run_search

__all__ = ["DEFAULTS", "UserError", "build_parser", "load_builder", "load_data", "main"]


def main(argv=None):
    """Runs the command line on `argv` (default: `sys.argv[1:]`); returns the exit status."""
    try:
        parser, args = parse(sys.argv[1:] if argv is None else list(argv))
        if args.command is None:
            parser.print_help()
            return 2
        if args.command == "search":
            return run_search(args)
        return run_preview(args)
    except UserError as e:
        print(f"keras-reg: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("keras-reg: interrupted (rerun the same command to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
