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
    try:  # DEFINE_config_file reads the --config.* overrides of sys.argv here
        define_flags(flags.FLAGS)
    except (AttributeError, KeyError) as error:
        _config_field_exit(sys.argv, prog, error)
    define_common_flags(flags.FLAGS)
    _declare_key_flags(define_flags, flags.FLAGS)
    usage = (doc or f"USAGE: {prog} [flags]\n").replace("%", "%%")
    if config_flag:
        usage = usage.rstrip("\n") + "\n\n" + CONFIG_FIELDS_HELP + "\n"
    # absl's usage() prints __main__'s docstring; a console script has none.
    sys.modules["__main__"].__doc__ = usage
    app.run(guarded(main, prog), flags_parser=lambda argv: _parse_flags(argv, prog))


def _parse_flags(argv, prog):
    """absl's parser; a ``--config.<field>`` naming no field: one line, exit 1."""
    try:
        return flags.FLAGS(argv)
    except (flags.Error, AttributeError, KeyError) as error:
        _config_field_exit(argv, prog, error)


def _config_field_exit(argv, prog, error):
    """One line for a bad flag (a --config.* field that does not exist: the
    closest fields first); exit status 1."""
    message = unknown_config_field(argv, _loaded_config(argv))
    if message is None and isinstance(error, flags.Error):  # as absl's parser
        message = f"{error}; pass --helpshort or --helpfull to see help on flags"
    elif message is None:
        overrides = [a.split("=", 1)[0] for a in argv[1:] if a.startswith("--config.")]
        if not overrides or wants_traceback():
            raise error
        import re

        hint = re.search(r'Did you mean "(\w+)" instead of "(\w+)"', str(error))
        bad = [o for o in overrides if hint and o.endswith("." + hint.group(2))]
        message = (
            f"did you mean {bad[0][: -len(hint.group(2))] + hint.group(1)}? {bad[0]}: "
            "the config has no such field (--print_config lists the fields)"
            if bad
            else f"a config field of {', '.join(overrides)} does not exist: {error}"
        )
    print(f"{prog}: error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(1)


def _loaded_config(argv):
    """The --config file's ConfigDict (the flag fails before it sets its value)."""
    try:
        flag = flags.FLAGS["config"]
        if flag.value is not None:
            return flag.value
        spec = flag.default_as_str or ""
    except KeyError:  # not defined yet
        spec = ""
    for arg in argv[1:]:
        if arg.startswith("--config="):
            spec = arg[len("--config="):]
    path, _, arg = spec.strip("'\"").partition(":")
    try:
        import importlib.util

        module_spec = importlib.util.spec_from_file_location("_wsol_cli_config", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return module.get_config(arg or None) if arg else module.get_config()
    except Exception:  # noqa: BLE001 (no suggestion then; the original error stays)
        return None


def _field_paths(node, prefix=""):
    if hasattr(node, "items") and not isinstance(node, str):
        out = []
        for k, v in node.items():
            out += _field_paths(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return [prefix]


def unknown_config_field(argv, config):
    """"did you mean ..." for the first ``--config.<path>`` of `argv` that
    names no field of `config` (None when every one does)."""
    import difflib

    if config is None:
        return None
    fields = _field_paths(config)
    for arg in argv[1:]:
        if not arg.startswith("--config."):
            continue
        path = arg[len("--config."):].split("=", 1)[0]
        if path in fields:
            continue
        leaf = path.rsplit(".", 1)[-1]
        leaves = {f.rsplit(".", 1)[-1] for f in fields}
        near = set(difflib.get_close_matches(leaf, leaves, n=3, cutoff=0.75))
        close = [f for f in fields if f.rsplit(".", 1)[-1] in (near or {leaf})]
        close = close or difflib.get_close_matches(path, fields, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join('--config.' + c for c in close[:3])}? " if close else ""
        return (
            f"{hint}--config.{path}: the config has no field {path!r} "
            "(--print_config lists the fields)"
        )
    return None


def print_config(config, stream=None):
    """Prints an ml_collections config (YAML-like, every field) to stdout."""
    print(str(config).rstrip("\n"), file=stream or sys.stdout)
