"""Shared command-line plumbing for the package's tools (wsol-train, wsol-eval, ...).

One home for what every CLI needs:

* `run(main, define_flags, doc, prog)`: the console-script entry point. It
  defines the tool's flags, makes them the "key flags" absl's ``--help`` lists
  (a console script's ``__main__`` is a generated stub that defines no flag, so
  absl's ``--help`` would otherwise print only "Try --helpfull"), puts the
  tool's docstring above them, and turns errors from bad user input into one
  line on stderr and exit status 1.
* `UserError`: raise it (or ValueError / OSError / KeyError) for bad input.
* ``--traceback`` (or ``WSOL_TRACEBACK=1``): show the full traceback instead.
* `print_config(config)`: the effective config, for ``--print_config``.

A new tool (e.g. wsol-predict) needs only::

    def define_flags(flag_values=flags.FLAGS): ...   # DEFINE_* with flag_values
    def main(argv): ...
    def run_main():
        cli.run(main, define_flags, __doc__, "wsol-predict")
"""

import ast
import importlib
import os
import sys

from absl import app
from absl import flags

from wsol_keras.config_flag import UserError  # noqa: F401  (re-exported)
from wsol_keras.config_flag import available_configs  # noqa: F401
from wsol_keras.config_flag import define_config_flag  # noqa: F401
from wsol_keras.config_flag import explain_config_override
from wsol_keras.config_flag import help_requested
from wsol_keras.config_flag import resolve_config  # noqa: F401

TRACEBACK_ENV = "WSOL_TRACEBACK"

# Exceptions that mean "the input was wrong" (a path, a value, a field): one
# line. Anything else is a bug in the package and keeps its traceback.
USER_ERRORS = (ValueError, OSError, KeyError)


CONFIG_FIELDS_HELP = (
    "Config fields (--config.SECTION.FIELD=VALUE): every field of the config "
    "file can be overridden; the fields and their defaults are in "
    "wsol_keras/configs/base.py (shared) and the experiment file; "
    "--print_config prints the effective config and exits."
)


def define_common_flags(flag_values=flags.FLAGS):
    """--traceback (every tool)."""
    if "traceback" not in flag_values:
        flags.DEFINE_bool(
            "traceback",
            False,
            f"On an error, print the full Python traceback instead of one line "
            f"(also: {TRACEBACK_ENV}=1).",
            flag_values=flag_values,
        )


def tool_flag_names(define_flags):
    """The flag names `define_flags` defines (in a fresh FlagValues)."""
    fv = flags.FlagValues()
    define_flags(fv)
    return set(fv)


def make_flag_values(define_flags):
    """A fresh FlagValues holding a tool's flags and the common ones."""
    fv = flags.FlagValues()
    define_flags(fv)
    define_common_flags(fv)
    return fv


def _declare_key_flags(define_flags, flag_values):
    # absl's --help lists the key flags of the module named sys.argv[0].
    names = tool_flag_names(define_flags) | {"traceback"}
    for name in sorted(names):
        flag_values.register_key_flag_for_module(sys.argv[0], flag_values[name])


def wants_traceback(flag_values=flags.FLAGS):
    if os.environ.get(TRACEBACK_ENV, "").strip() not in ("", "0", "false", "False"):
        return True
    try:
        return bool(flag_values["traceback"].value)
    except KeyError:
        return False


def format_error(prog, error):
    """One line: ``prog: error: <message>`` (message of the exception)."""
    if isinstance(error, KeyError) and error.args:
        message = str(error.args[0])
    else:
        message = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename and error.strerror:
        message = f"{error.strerror}: {error.filename}"
    message = " ".join(message.split())  # one line
    return f"{prog}: error: {message} (--traceback for details)"


def guarded(main, prog, flag_values=flags.FLAGS):
    """Wraps `main(argv)`: user errors -> one line on stderr, exit status 1."""

    def wrapper(argv):
        try:
            return main(argv)
        except (UserError,) + USER_ERRORS as error:
            if wants_traceback(flag_values):
                raise
            print(format_error(prog, error), file=sys.stderr)
            sys.exit(EXIT_ERROR)

    return wrapper


# Exit status of every tool (README, "Exit status").
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

# console script -> (tool module, its flags in wsol_keras.cli_flags, takes --config.*)
TOOLS = {
    "wsol-train": ("wsol_keras.training.trainer", "train_flags", True),
    "wsol-eval": ("wsol_keras.evaluation.evaluator", "eval_flags", False),
    "wsol-export": ("wsol_keras.export.export_saved_model", "export_flags", False),
    "wsol-export-tflite": ("wsol_keras.export.export_tflite", "export_tflite_flags", False),
    "wsol-predict": ("wsol_keras.predict.main", "predict_flags", False),
    "wsol-score": ("wsol_keras.evaluation.score_folder", "score_flags", True),
}


def format_usage_error(prog, error):
    """One line for a command-line mistake (a flag or --config field)."""
    message = str(error)
    if isinstance(error, KeyError) and error.args:
        message = str(error.args[0])
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    # ml_collections buries the useful line ("did you mean ...") in a
    # traceback it formats into the message: lead with it.
    hint = [ln for ln in lines if "did you mean" in ln.lower()]
    prefixes = ("KeyError:", "AttributeError:", "ValueError:", "TypeError:")
    key = [ln for ln in lines if ln.startswith(prefixes)]
    if hint:
        message = hint[-1]
        if message.startswith(prefixes):
            message = message.split(":", 1)[1]
    elif key:
        message = key[-1].split(":", 1)[1]
    else:
        message = lines[0] if lines else type(error).__name__
    message = " ".join(message.split())
    if len(message) > 1 and message[0] == message[-1] and message[0] in "'\"":
        message = message[1:-1]
    return f"{prog}: usage error: {message} (--help lists the flags)"


_USAGE_ERRORS = (UserError, flags.Error, KeyError, AttributeError, ValueError, TypeError)


def _usage_exit(prog, error, argv, flag_values):
    """Prints one line for a command-line mistake and exits 2."""
    if wants_traceback(flag_values) or "--traceback" in argv:
        raise error
    line = None
    if isinstance(error, UserError):
        line = f"{prog}: usage error: {error}"
    elif prog in TOOLS and TOOLS[prog][2]:
        try:
            default = flag_values["config"].default if "config" in flag_values else None
        except KeyError:
            default = None
        try:
            explained = explain_config_override(argv, default or _default_config(prog))
        except Exception:  # pylint: disable=broad-except
            explained = None
        if explained:
            line = f"{prog}: usage error: {explained}"
    print(line or format_usage_error(prog, error), file=sys.stderr)
    sys.exit(EXIT_USAGE)


def _default_config(prog):
    if prog == "wsol-train":
        from wsol_keras import cli_flags  # pylint: disable=g-import-not-at-top

        return cli_flags.DEFAULT_TRAIN_CONFIG
    return None


def parse_flags(argv, prog, flag_values=flags.FLAGS):
    """Parses the command line: --help exits 0; a mistake is one line, exit 2."""
    try:
        return flag_values(argv)
    except SystemExit as e:
        if help_requested(argv) and e.code in (0, 1, None):
            sys.exit(EXIT_OK)
        raise
    except _USAGE_ERRORS as error:
        _usage_exit(prog, error, argv, flag_values)


def _setup(define_flags, doc, prog, config_flag):
    try:  # a default config is loaded (and overridden) here
        define_flags(flags.FLAGS)
    except _USAGE_ERRORS as error:
        _usage_exit(prog, error, sys.argv, flags.FLAGS)
    define_common_flags(flags.FLAGS)
    _declare_key_flags(define_flags, flags.FLAGS)
    usage = (doc or f"USAGE: {prog} [flags]\n").replace("%", "%%")
    if config_flag:
        usage = usage.rstrip("\n") + "\n\n" + CONFIG_FIELDS_HELP + "\n"
    # absl's usage() prints __main__'s docstring; a console script has none.
    sys.modules["__main__"].__doc__ = usage


def run(main, define_flags, doc, prog, config_flag=False):
    """Entry point of a tool: flags, --help text, error handling.

    Args:
        main: absl main(argv).
        define_flags: callable(flag_values) defining the tool's flags.
        doc: the tool's usage text (its module docstring).
        prog: the command's name (for error lines).
        config_flag: True when the tool takes --config.* overrides (adds where
            the fields are listed to --help).
    """
    _setup(define_flags, doc, prog, config_flag)
    app.run(guarded(main, prog), flags_parser=lambda argv: parse_flags(argv, prog))


def module_doc(module_name):
    """A module's docstring, read from its source file (nothing imported)."""
    package_dir = os.path.dirname(os.path.abspath(__file__))
    parts = module_name.split(".")[1:]
    path = os.path.join(package_dir, *parts) + ".py"
    with open(path, encoding="utf-8") as f:
        return ast.get_docstring(ast.parse(f.read()), clean=False) or ""


def console(prog):
    """A console script: flags parsed (and --help answered) before the tool's
    module, and with it TensorFlow, is imported."""
    module_name, flags_name, config_flag = TOOLS[prog]
    from wsol_keras import cli_flags  # pylint: disable=g-import-not-at-top

    def main(argv):
        import wsol_keras  # pylint: disable=g-import-not-at-top

        wsol_keras.load_deferred()
        return importlib.import_module(module_name).main(argv)

    _setup(getattr(cli_flags, flags_name), module_doc(module_name), prog, config_flag)
    app.run(guarded(main, prog), flags_parser=lambda argv: parse_flags(argv, prog))


def train_main():
    console("wsol-train")


def eval_main():
    console("wsol-eval")


def export_main():
    console("wsol-export")


def export_tflite_main():
    console("wsol-export-tflite")


def predict_main():
    console("wsol-predict")


def score_main():
    console("wsol-score")


def print_config(config, stream=None):
    """Prints an ml_collections config (YAML-like, every field) to stdout."""
    print(str(config).rstrip("\n"), file=stream or sys.stdout)
