#!/usr/bin/env bash
# Usage: infra/build-check.sh SAM_BINARY
#
# `sam build`s infra/template.yaml, then imports the handler of every AWS::Serverless::Function in the built
# template from the built artifact alone, the way Lambda would: the function's built code, then each of its
# layers' python/ directory, then a stand-in for the Lambda runtime's own packages (boto3 only). The import
# runs in a python3.12 started with `-S` (no site-packages of the interpreter), a clean environment and a
# scratch working directory, on a copy of the built artifact outside the checkout, so neither the checkout's
# src/, functions/ and templates/ (code that looks for files in the directories above it would find them)
# nor any installed package can stand in for something missing from the build. Any handler that fails to
# import fails this script.
#
# Package data a handler only looks for when invoked (not at import) is checked too: when a module named
# in PACKAGE_DATA below was loaded, its locator must find the data in the built artifact.
#
# The functions run on arm64 and the layer is built for it (infra/layer/Makefile), on whatever machine this
# runs: its compiled extensions (pydantic_core, PyYAML, ...) need not import here. So every compiled file of
# a built layer must be for the architecture its functions run on (ELF machine, wheel tags), and where that
# is not this machine's, the handlers are imported from the same layer built for this machine (the layer's
# Makefile with LAYER_ARCH), which must hold the same distributions and the same files, binaries aside.
#
# Needs python3.12 (Lambda's runtime); pyenv's is found through PYENV_VERSION. Where no python3.12 can run
# at all the build is skipped with a warning. Reaches no network but the package index (for the layer's
# requirements and the boto3 stand-in).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 SAM_BINARY" >&2
    exit 2
fi
sam=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
sam=$(command -v "$sam" || true)
if [[ -z $sam ]]; then
    echo "build-check: SAM CLI '$1' not found" >&2
    exit 2
fi

if ! py312=$(python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null) || [[ -z $py312 ]]; then
    echo "WARNING: build-check: no runnable python3.12 (Lambda's runtime; PYENV_VERSION=${PYENV_VERSION:-unset})." >&2
    echo "WARNING: build-check: SKIPPED 'sam build' and the handler import check." >&2
    exit 0
fi
echo "build-check: python3.12 is $py312"

build_dir=.aws-sam/build
rm -rf "$build_dir"
"$sam" build --template infra/template.yaml --build-dir "$build_dir"

# A layer holds what the functions import (infra/layer/Makefile): never the local tooling or moto.
for layer_python in "$build_dir"/*/python; do
    for stray in moto dunning/local dunning/cli; do
        if [[ -e $layer_python/$stray ]]; then
            echo "build-check: the built layer $layer_python has $stray, local tooling the functions never import" >&2
            exit 1
        fi
    done
done

# The Lambda runtime provides boto3 (which is why the layer does not ship it): stand it in with the pin
# from pyproject.toml, kept apart from the build and reused while the pin stays the same.
boto3_pin=$(sed -nE 's/^[[:space:]]*"(boto3==[^"]+)",?[[:space:]]*$/\1/p' pyproject.toml)
if [[ -z $boto3_pin ]]; then
    echo "build-check: no boto3==... pin in pyproject.toml [project].dependencies" >&2
    exit 1
fi
runtime_dir=.aws-sam/lambda-runtime/${boto3_pin//=/-}
if [[ ! -f $runtime_dir/.complete ]]; then
    rm -rf "$runtime_dir"
    "$py312" -m pip install -qq --disable-pip-version-check --root-user-action=ignore --no-compile --target "$runtime_dir" "$boto3_pin"
    touch "$runtime_dir/.complete"
fi

# A Python with PyYAML reads the built template: the SAM CLI's own (SAM depends on PyYAML), else the dev venv's.
tools_python=
for candidate in "$(dirname "$sam")/python" .venv/bin/python python3; do
    if "$candidate" -c 'import yaml' 2>/dev/null; then
        tools_python=$candidate
        break
    fi
done
if [[ -z $tools_python ]]; then
    echo "build-check: no Python with PyYAML found to read $build_dir/template.yaml" >&2
    exit 1
fi

# One line per function: logical id, handler, then the directories to put on sys.path (tab-separated).
functions=$("$tools_python" - "$build_dir/template.yaml" <<'PY'
import sys
from pathlib import Path

import yaml


class Loader(yaml.SafeLoader):
    """Tolerates CloudFormation short tags (!Ref, !GetAtt, ...): each becomes its long form."""


def intrinsic(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        return {name: value.split(".", 1) if suffix == "GetAtt" else value}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}


Loader.add_multi_constructor("!", intrinsic)
template_path = Path(sys.argv[1]).resolve()
base = template_path.parent
template = yaml.load(template_path.read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506 - SafeLoader
resources = template.get("Resources") or {}
globals_ = (template.get("Globals") or {}).get("Function") or {}
failed = False


def fail(message):
    global failed
    print(f"build-check: {message}", file=sys.stderr)
    failed = True


found = 0
for logical_id, resource in resources.items():
    if resource.get("Type") != "AWS::Serverless::Function":
        continue
    found += 1
    props = resource.get("Properties") or {}
    runtime = props.get("Runtime", globals_.get("Runtime"))
    handler = props.get("Handler", globals_.get("Handler"))
    code_uri = props.get("CodeUri", globals_.get("CodeUri"))
    if props.get("PackageType", globals_.get("PackageType", "Zip")) != "Zip" or props.get("InlineCode"):
        fail(f"{logical_id}: only zip functions built from a CodeUri can be checked")
        continue
    if not (isinstance(runtime, str) and runtime.startswith("python")):
        fail(f"{logical_id}: runtime {runtime!r} is not a python runtime")
        continue
    if not isinstance(handler, str) or "." not in handler or not isinstance(code_uri, str):
        fail(f"{logical_id}: needs a Handler module.function and a built CodeUri (got {handler!r}, {code_uri!r})")
        continue
    paths = [base / code_uri]
    # SAM adds the Globals' layers before the function's own.
    for layer in [*(globals_.get("Layers") or []), *(props.get("Layers") or [])]:
        if not (isinstance(layer, dict) and set(layer) == {"Ref"} and layer["Ref"] in resources):
            fail(f"{logical_id}: layer {layer!r} is not a layer of this template; it cannot be checked here")
            continue
        layer_resource = resources[layer["Ref"]]
        if layer_resource.get("Type") != "AWS::Serverless::LayerVersion":
            fail(f"{logical_id}: {layer['Ref']} is not an AWS::Serverless::LayerVersion")
            continue
        # Lambda mounts a layer at /opt and puts /opt/python on sys.path.
        paths.append(base / str(layer_resource["Properties"]["ContentUri"]) / "python")
    for path in paths:
        if not path.is_dir():
            fail(f"{logical_id}: built directory {path} does not exist")
    print("\t".join([logical_id, handler, *map(str, paths)]))

if not found:
    fail("the built template has no AWS::Serverless::Function")
sys.exit(1 if failed else 0)
PY
)

# One line per layer: logical id, built python/ directory, its Makefile, the machine its wheels are for.
layers=$("$tools_python" - infra/template.yaml "$build_dir" <<'PY'
import sys
from pathlib import Path

import yaml


class Loader(yaml.SafeLoader):
    """Tolerates CloudFormation short tags (!Ref, !GetAtt, ...): each becomes its long form."""


def intrinsic(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}


Loader.add_multi_constructor("!", intrinsic)
template_path, build = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
template = yaml.load(template_path.read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506 - SafeLoader
resources = template.get("Resources") or {}
globals_ = (template.get("Globals") or {}).get("Function") or {}
# Lambda's architecture names, and the machine (uname -m, wheel platform tags) of each.
MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}
failed = False


def fail(message):
    global failed
    print(f"build-check: {message}", file=sys.stderr)
    failed = True


for logical_id, resource in resources.items():
    if resource.get("Type") != "AWS::Serverless::LayerVersion":
        continue
    props, metadata = resource.get("Properties") or {}, resource.get("Metadata") or {}
    architectures = props.get("CompatibleArchitectures") or ["x86_64"]
    build_architecture = metadata.get("BuildArchitecture", "x86_64")
    if architectures != [build_architecture] or build_architecture not in MACHINES:
        fail(f"{logical_id}: BuildArchitecture and CompatibleArchitectures must name one of {sorted(MACHINES)}")
        continue
    for function_id, function in resources.items():
        function_props = function.get("Properties") or {}
        if function.get("Type") != "AWS::Serverless::Function":
            continue
        uses = [*(globals_.get("Layers") or []), *(function_props.get("Layers") or [])]
        runs_on = function_props.get("Architectures", globals_.get("Architectures", ["x86_64"]))
        if {"Ref": logical_id} in uses and runs_on != architectures:
            fail(f"{function_id} runs on {runs_on} but its layer {logical_id} is built for {architectures}")
    makefile = template_path.parent / str(metadata.get("ContextPath", ".")) / "Makefile"
    machine = MACHINES[build_architecture]
    print("\t".join([logical_id, str(build / logical_id / "python"), str(makefile), machine]))
sys.exit(1 if failed else 0)
PY
)

# Every compiled file of a layer is for the given machine: ELF files by their header, wheels by their tags.
read -r -d '' binaries_check <<'PY' || true
import sys
from pathlib import Path

ELF_MACHINES = {"x86_64": 62, "aarch64": 183}  # e_machine: EM_X86_64, EM_AARCH64
root, machine = Path(sys.argv[1]), sys.argv[2]
wrong, binaries = [], 0
for path in sorted(root.rglob("*")):
    if not path.is_file():
        continue
    with path.open("rb") as file:
        header = file.read(20)
    if header[:4] != b"\x7fELF":
        continue
    binaries += 1
    found = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    if found != ELF_MACHINES[machine]:
        names = {number: name for name, number in ELF_MACHINES.items()}
        wrong.append(f"{path.relative_to(root)}: ELF for {names.get(found, found)}")
for wheel in sorted(root.glob("*.dist-info/WHEEL")):
    for line in wheel.read_text(encoding="utf-8").splitlines():
        if line.startswith("Tag:"):
            platforms = line.partition(":")[2].strip().rsplit("-", 1)[-1].split(".")
            if platforms != ["any"] and not all(tag.endswith(f"_{machine}") for tag in platforms):
                wrong.append(f"{wheel.parent.name}: wheel tag {line.partition(':')[2].strip()}")
if wrong:
    raise SystemExit(f"build-check: {root}: not for {machine}:\n  " + "\n  ".join(wrong))
print(f"build-check: {root}: all {binaries} compiled files are {machine}")
PY

# A layer and its twin for another machine hold the same distributions and files: the same bytes, but for the
# compiled files and what describes the platform's wheel (its RECORD, WHEEL and sboms/: compared by name, the
# machine's masked) and auditwheel's vendored libraries (*.libs/, named by their hash: not compared).
read -r -d '' same_contents <<'PY' || true
import hashlib
import sys
from pathlib import Path


def inventory(root, machine):
    files = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        if not path.is_file() or relative.split("/")[0].endswith(".libs"):
            continue
        content = path.read_bytes()
        wheel = relative.endswith((".dist-info/RECORD", ".dist-info/WHEEL")) or ".dist-info/sboms/" in relative
        by_name = wheel or content[:4] == b"\x7fELF"
        files[relative.replace(machine, "{machine}")] = None if by_name else hashlib.sha256(content).digest()
    return files


layer, twin = Path(sys.argv[1]), Path(sys.argv[2])
ours, theirs = inventory(layer, sys.argv[3]), inventory(twin, sys.argv[4])
different = sorted(name for name in ours.keys() | theirs.keys() if ours.get(name, 0) != theirs.get(name, 0))
if different:
    raise SystemExit(
        f"build-check: {twin} is not {layer} built for another machine; they differ in:\n  "
        + "\n  ".join(different[:30])
    )
print(f"build-check: {twin}: the same {len(ours)} files as {layer}, binaries aside")
PY

# Imports the handler and checks that every module loaded came from the given directories or the stdlib.
read -r -d '' import_check <<'PY' || true
import importlib
import sys
import sysconfig
from pathlib import Path

# module -> a function of it that locates package data the module needs at invocation (and raises without it).
PACKAGE_DATA = {"dunning.notices.render": "shipped_template_dir"}

handler, *roots = sys.argv[1:]
module_name, _, attribute = handler.rpartition(".")
module = importlib.import_module(module_name)
function = getattr(module, attribute)
if not callable(function):
    raise SystemExit(f"{handler} is not callable")
allowed = [Path(p).resolve() for p in roots]
allowed += [Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "platstdlib")]
strays = sorted(
    f"{name}: {file}"
    for name, mod in list(sys.modules.items())
    if (file := getattr(mod, "__file__", None))
    and not any(Path(file).resolve().is_relative_to(root) for root in allowed)
)
if strays:
    raise SystemExit("modules loaded from outside the built artifact:\n  " + "\n  ".join(strays))
print(f"imported {handler} from {Path(module.__file__).resolve()}", flush=True)
for data_module, locator in PACKAGE_DATA.items():
    if data_module not in sys.modules:
        continue
    try:
        located = getattr(sys.modules[data_module], locator)()
    except Exception as exc:  # noqa: BLE001 - reported, whatever it is
        raise SystemExit(
            f"{data_module}.{locator}() fails in the built artifact, so {handler} would fail when invoked: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    # roots: the function's and its layers' built directories, then the runtime stand-in (not the build).
    if not any(Path(located).resolve().is_relative_to(Path(root).resolve()) for root in roots[:-1]):
        raise SystemExit(f"{data_module}.{locator}() found {located}, outside the built artifact")
    print(f"{data_module}.{locator}() -> {located}")
PY

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# The layers' machine, and for a layer built for another machine than this one, its twin for this one: built
# by the layer's own Makefile, run in the built layer (which holds exactly the dunning parts the Makefile
# copies, so an edit of src/ since `sam build` cannot tell the two apart) with LAYER_ARCH set to this machine.
host_machine=$(uname -m)
twins=()
while IFS=$'\t' read -r layer_id layer_python makefile machine; do
    [[ -z $layer_id ]] && continue
    "$tools_python" -c "$binaries_check" "$layer_python" "$machine"
    [[ $machine == "$host_machine" ]] && continue
    if [[ $(uname -s) != Linux ]]; then
        echo "build-check: $layer_id is built for Linux $machine: its handlers import on Linux only" >&2
        exit 1
    fi
    echo "build-check: $layer_id: building it for this machine ($host_machine) to import the handlers from"
    if ! make --no-print-directory -C "$layer_python" -f "$makefile" "build-$layer_id" \
        ARTIFACTS_DIR="$scratch/twins/$layer_id" LAYER_ARCH="$host_machine" >"$scratch/twin.log" 2>&1; then
        cat "$scratch/twin.log" >&2
        echo "build-check: FAILED: building $layer_id for $host_machine" >&2
        exit 1
    fi
    "$tools_python" -c "$same_contents" "$layer_python" "$scratch/twins/$layer_id/python" \
        "$machine" "$host_machine"
    twins+=("$layer_id")
done <<<"$layers"

# The check runs on a copy outside the checkout: the built code sits below the checkout's root, where code
# that searches the directories above its own file would find the checkout's files instead of the build's.
build_abs=$(cd "$build_dir" && pwd -P)  # as Path.resolve() spells it
artifact=$scratch/build
cp -R "$build_abs" "$artifact"
for layer_id in "${twins[@]}"; do
    rm -rf "${artifact:?}/$layer_id/python"
    mv "$scratch/twins/$layer_id/python" "$artifact/$layer_id/python"
done
mkdir "$scratch/cwd"
runtime_abs=$root/$runtime_dir
failures=0
count=0
while IFS=$'\t' read -r logical_id handler paths_line; do
    [[ -z $logical_id ]] && continue
    count=$((count + 1))
    IFS=$'\t' read -r -a paths <<<"$paths_line"
    for i in "${!paths[@]}"; do
        if [[ ${paths[i]} != "$build_abs"/* ]]; then
            echo "build-check: $logical_id: ${paths[i]} is outside $build_abs" >&2
            exit 1
        fi
        paths[i]=$artifact${paths[i]#"$build_abs"}
    done
    pythonpath=$(IFS=:; echo "${paths[*]}"):$runtime_abs
    echo "build-check: $logical_id: importing $handler"
    if ! (cd "$scratch/cwd" && env -i \
        PATH=/usr/bin:/bin \
        PYENV_VERSION="${PYENV_VERSION:-}" \
        PYTHONPATH="$pythonpath" \
        PYTHONDONTWRITEBYTECODE=1 \
        AWS_DEFAULT_REGION=eu-west-1 \
        AWS_REGION=eu-west-1 \
        AWS_ACCESS_KEY_ID=testing \
        AWS_SECRET_ACCESS_KEY=testing \
        AWS_LAMBDA_FUNCTION_NAME="$logical_id" \
        LEDGER_TABLE=dunning-ledger \
        INGEST_BUCKET=dunning-ingest \
        POWERTOOLS_TRACE_DISABLED=1 \
        POWERTOOLS_SERVICE_NAME=dunning \
        "$py312" -S -B -c "$import_check" "$handler" "${paths[@]}" "$runtime_abs"); then
        echo "build-check: FAILED: $logical_id's handler $handler does not import from the built artifact," \
            "or misses package data there" >&2
        failures=$((failures + 1))
    fi
done <<<"$functions"

if ((failures)); then
    echo "build-check: $failures of $count handler(s) failed to import" >&2
    exit 1
fi
if ((${#twins[@]})); then
    echo "build-check: OK: sam build succeeded, its layers are built for their functions' architecture, and" \
        "all $count handler(s) import from the built artifact (the layers built for $host_machine)"
else
    echo "build-check: OK: sam build succeeded and all $count handler(s) import from the built artifact"
fi
