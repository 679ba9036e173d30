#!/usr/bin/env python3
"""Validates saelab's SAEBench result files with SAEBench's own pydantic classes.

    .venv-saebench/bin/python scripts/reference/validate_saebench_json.py FILE.json...

Each file is validated as the eval-output class its eval_type_id names (core: CoreEvalOutput,
sparse_probing: SparseProbingEvalOutput, absorption_first_letter: AbsorptionEvalOutput), the way
SAEBench builds them: every nested dict through the pydantic dataclasses (pydantic.TypeAdapter). Pydantic dataclasses ignore unknown keys, so the
script also lists keys a class does not declare ("extra"), since SAEBench's own writer
(dataclasses.asdict) would drop them. Prints every error and exits 1 if any file has an error;
extras are reported but are not errors unless --strict. Needs the venv of setup_saebench_venv.sh.
"""
import argparse
import dataclasses
import json
import sys
import typing

import pydantic

from sae_bench.evals.absorption.eval_output import AbsorptionEvalOutput
from sae_bench.evals.core.eval_output import CoreEvalOutput
from sae_bench.evals.sparse_probing.eval_output import SparseProbingEvalOutput

CLASSES = {"core": CoreEvalOutput, "sparse_probing": SparseProbingEvalOutput,
           "absorption_first_letter": AbsorptionEvalOutput}


def dataclass_of(tp):
    """The pydantic dataclass inside a field type (X, X | None, list[X]), or None."""
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        found = dataclass_of(arg)
        if found is not None:
            return found
    return None


def extra_keys(cls, data, where=""):
    """Keys of `data` that `cls` (a dataclass) does not declare, recursively, as dotted paths."""
    if not isinstance(data, dict):
        return []
    hints = typing.get_type_hints(cls)
    out = []
    for key, value in data.items():
        path = f"{where}{key}"
        if key not in hints:
            out.append(path)
            continue
        sub = dataclass_of(hints[key])
        if sub is None:
            continue
        if isinstance(value, list):
            for i, item in enumerate(value):
                out += extra_keys(sub, item, f"{path}[{i}].")
        else:
            out += extra_keys(sub, value, f"{path}.")
    return out


def validate(path, strict):
    with open(path) as f:
        data = json.load(f)
    kind = data.get("eval_type_id")
    if kind not in CLASSES:
        return [f"eval_type_id {kind!r} is not one of {sorted(CLASSES)}"], []
    cls = CLASSES[kind]
    errors = []
    try:
        pydantic.TypeAdapter(cls).validate_python(data)
    except pydantic.ValidationError as e:
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"])
            errors.append(f"{loc}: {err['msg']} ({err['type']})")
    extras = extra_keys(cls, data)
    if strict:
        errors += [f"{k}: not a field of {cls.__name__} (extra)" for k in extras]
        extras = []
    return errors, extras


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--strict", action="store_true", help="count undeclared keys as errors")
    args = ap.parse_args()
    total = 0
    for path in args.files:
        errors, extras = validate(path, args.strict)
        total += len(errors)
        print(f"{path}: {len(errors)} error(s), {len(extras)} undeclared key(s)")
        for e in errors:
            print(f"  error: {e}")
        for k in extras:
            print(f"  extra (ignored by SAEBench): {k}")
    print(f"{total} error(s) in {len(args.files)} file(s)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
