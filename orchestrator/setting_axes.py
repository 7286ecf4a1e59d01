"""Grid axes over settings outside ``train``: the evaluation's and a masker's.

A grid key with a dot names a setting by its place in the sweep file:

- ``eval.<setting>``: an evaluation setting (``selfsup.config.EvalConfig``: ``eval.knn_k``,
  ``eval.linear_epochs``, ...); every trial has it.
- ``maskers.<name>.min_area``, ``maskers.<name>.containment``, ``maskers.<name>.params.<parameter>``
  (e.g. ``maskers.fz.params.scale``): a setting of the masker ``<name>`` of the ``maskers`` section;
  only the trials that sample regions with that masker have it, so it multiplies no other trial
  (SimCLR's, or another masker's).

Training settings keep their plain names (``c``, ``epochs``, ``temperature``): they live under
``train``, where nothing else can share their names (``eval.image_size`` and ``image_size`` are two
settings). A trial records each setting axis it has in its params under the grid key
(``orchestrator.plan.Trial.settings``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

EVAL = "eval"
MASKERS = "maskers"
MASKER_SETTINGS = ("min_area", "containment")
"""Settings of a ``maskers`` entry besides its ``params`` (``orchestrator.config.MaskerSpec``)."""
SYNTAX = "eval.<setting>, maskers.<name>.min_area, maskers.<name>.containment, maskers.<name>.params.<parameter>"


@dataclass(frozen=True)
class SettingAxis:
    """A parsed dotted grid key."""

    key: str
    """The grid key as written, e.g. ``maskers.fz.min_area``."""
    masker: str | None
    """The ``maskers`` entry it varies; None for an evaluation setting."""
    path: tuple[str, ...]
    """Where the value goes inside the section's entry: ``("knn_k",)``, ``("min_area",)``, ``("params", "scale")``."""


def is_setting_axis(key: str) -> bool:
    """Whether a grid key names a setting outside ``train`` (it has a dot)."""
    return "." in key


def is_masker_axis(key: str) -> bool:
    """Whether a grid key (or a trial's param name) is a masker setting (``maskers.<name>.*``)."""
    return key.startswith(f"{MASKERS}.")


def is_region_setting(key: str) -> bool:
    """Whether a trial param applies to region views only: ``masker``, ``c`` and every masker setting
    (a whole-image twin has none of them)."""
    return key in ("masker", "c") or is_masker_axis(key)


def parse_axis(key: str) -> SettingAxis:
    """The axis a dotted grid key names; ValueError (one line) for a key of no known shape. Whether
    the masker, the setting and the values exist is the sweep schema's check (``orchestrator.config``)."""
    section, _, rest = key.partition(".")
    if section == EVAL and rest and "." not in rest:
        return SettingAxis(key, None, (rest,))
    if section == MASKERS and "." in rest:
        if ".params." in rest:
            name, parameter = rest.rsplit(".params.", 1)
            if name and parameter and "." not in parameter:
                return SettingAxis(key, name, ("params", parameter))
        else:
            name, setting = rest.rsplit(".", 1)
            if name and setting in MASKER_SETTINGS:
                return SettingAxis(key, name, (setting,))
    raise ValueError(f"unknown grid key {key!r}: a dotted grid key is one of {SYNTAX}")


def override(entry: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of a section's entry (plain values, e.g. a masker's ``model_dump()``) with ``value`` at ``path``."""
    out = copy.deepcopy(entry)
    inner = out
    for part in path[:-1]:
        inner = inner.setdefault(part, {})
    inner[path[-1]] = value
    return out
