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

import difflib
import os
import sys

from absl import app
from absl import flags

TRACEBACK_ENV = "WSOL_TRACEBACK"

# Exceptions that mean "the input was wrong" (a path, a value, a field): one
# line. Anything else is a bug in the package and keeps its traceback.
USER_ERRORS = (ValueError, OSError, KeyError)


class UserError(Exception):
    """Bad command-line input; the message is printed as the whole error."""


CONFIG_FIELDS_HELP = (
    "Config fields (--config.SECTION.FIELD=VALUE): every field of the config "
    "file can be overridden; the fields and their defaults are in "
    "wsol_keras/configs/base.py (shared) and the experiment file; "
    "--print_config prints the effective config and exits."
)


# The installed experiment configs: this package's configs/ folder (found
# from this file, so resolving a name imports nothing).
CONFIGS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
_CONFIGS_MODULE = "wsol_keras.configs."


def available_configs():
    """Names of the installed experiment configs (``configs/<name>.py``)."""
    return sorted(
        f[:-3]
        for f in os.listdir(CONFIGS_DIR)
        if f.endswith(".py") and f not in ("__init__.py", "base.py")
    )


def resolve_config(spec):
    """``--config`` value -> path of the config file (``:arg`` kept).

    Accepted, in this order: an existing file path; an installed config's name
    (``synthetic_spn``), module (``wsol_keras.configs.synthetic_spn``) or
    checkout path (``configs/synthetic_spn.py``, which then works from any
    folder). ``:smoke`` (or any ``:arg``) after any of them is passed on to
    the config's ``get_config(arg)``.

    Raises:
      UserError: nothing matches; the message lists the installed configs.
    """
    path, sep, arg = str(spec).partition(":")
    if os.path.isfile(path):
        return str(spec)
    name = path
    if name.startswith(_CONFIGS_MODULE):
        name = name[len(_CONFIGS_MODULE):]
    elif name.endswith(".py"):
        name = os.path.basename(name)[:-3]
    candidate = os.path.join(CONFIGS_DIR, name + ".py")
    if name in available_configs() and os.path.isfile(candidate):
        return candidate + sep + arg
    names = available_configs()
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise UserError(
        f"--config={spec}: no such file or installed config{hint}; a path to a "
        f"config file, or one of: {', '.join(names)}"
    )


def define_config_flag(name, default, help_string, flag_values=flags.FLAGS):
    """An ml_collections config-file flag whose value may also be a config's
    name (`resolve_config`); overrides as ``--<name>.SECTION.FIELD=VALUE``."""
    from ml_collections.config_flags import config_flags  # pylint: disable=g-import-not-at-top

    class _Parser(config_flags.ConfigFileFlagParser):
        def parse(self, path):
            return super().parse(resolve_config(path))

    flag = config_flags._ConfigFlag(  # pylint: disable=protected-access
        parser=_Parser(name=name, lock_config=True),
        serializer=flags.ArgumentSerializer(),
        name=name,
        default=default,
        help_string=help_string,
        flag_values=flag_values,
    )
    return flags.DEFINE_flag(flag, flag_values)


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
            sys.exit(1)

    return wrapper


def run(main, define_flags, doc, prog, config_flag=False):
    """Entry point of a console script: flags, --help text, error handling.

    Args:
        main: absl main(argv).
        define_flags: callable(flag_values) defining the tool's flags.
        doc: the tool's usage text (its module docstring).
        prog: the command's name (for error lines).
        config_flag: True when the tool takes --config.* overrides (adds where
            the fields are listed to --help).
    """
    define_flags(flags.FLAGS)
    define_common_flags(flags.FLAGS)
    _declare_key_flags(define_flags, flags.FLAGS)
    usage = (doc or f"USAGE: {prog} [flags]\n").replace("%", "%%")
    if config_flag:
        usage = usage.rstrip("\n") + "\n\n" + CONFIG_FIELDS_HELP + "\n"
    # absl's usage() prints __main__'s docstring; a console script has none.
    sys.modules["__main__"].__doc__ = usage
    app.run(guarded(main, prog))


def print_config(config, stream=None):
    """Prints an ml_collections config (YAML-like, every field) to stdout."""
    print(str(config).rstrip("\n"), file=stream or sys.stdout)
