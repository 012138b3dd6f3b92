"""``--config``: an experiment config by name, module or path; one-line
explanations of a ``--config.FIELD`` that does not exist.

Imports neither TensorFlow nor the rest of the package (the console scripts
use it before their flags are parsed).
"""

import difflib
import importlib.util
import os
import re
import sys

from absl import flags

HELP_FLAGS = ("--help", "-help", "-h", "--helpshort", "-helpshort", "--helpfull",
              "-helpfull", "-?", "--helpxml", "-helpxml")


class UserError(Exception):
    """Bad command-line input; the message is printed as the whole error."""


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
    if help_requested(sys.argv):
        # --help only lists the flag: loading the config would import
        # TensorFlow (the experiment's modules) before the help is printed.
        return flags.DEFINE_string(name, default, help_string, flag_values=flag_values)
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


def help_requested(argv):
    """Whether the command line asks for --help (before any "--")."""
    for arg in list(argv)[1:]:
        if arg == "--":
            return False
        if arg.split("=", 1)[0] in HELP_FLAGS:
            return True
    return False


def explain_config_override(argv, default_spec=None, name="config"):
    """The first ``--config.PATH=VALUE`` of `argv` naming no field, as one
    line with the closest field first (None when every path exists)."""
    spec = default_spec
    overrides = []
    for arg in argv[1:]:
        if arg == "--":
            break
        if re.match(rf"^--?{name}=", arg):
            spec = arg.split("=", 1)[1]
        m = re.match(rf"^--?(?:no)?{name}\.([^=]+)", arg)
        if m:
            overrides.append(m.group(1))
    if not spec or not overrides:
        return None
    path, _, arg = resolve_config(spec).partition(":")
    module_spec = importlib.util.spec_from_file_location("wsol_config_check", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(*([arg] if arg else []))
    for field in overrides:
        node, parts = config, field.split(".")
        for i, part in enumerate(parts):
            if hasattr(node, "keys") and part in node.keys():
                node = node[part]
                continue
            section = ".".join(parts[:i])
            where = f"{name}.{section}" if section else name
            fields = sorted(node.keys()) if hasattr(node, "keys") else []
            close = difflib.get_close_matches(part, fields, n=1)
            first = f"did you mean --{where}.{close[0]}? " if close else ""
            if not fields:
                return f"{first}--{name}.{field}: {where} is a value, not a section"
            if section == "method" and "name" in fields:
                listing = (f"method {node['name']!r} takes: "
                           + ", ".join(f for f in fields if f != "name"))
            elif close:
                return f"{first}(--{name}.{field}: {where} has no field {part!r})"
            else:
                listing = "its fields: " + ", ".join(fields)
            return f"{first}--{name}.{field}: {where} has no field {part!r} ({listing})"
    return None
