"""The google provider's resource schema, offline, from the npm package @cdktf/provider-google.

`terraform validate` needs the provider plugin, which cannot be downloaded here. The cdktf
package is generated from the provider's schema (14.13.0 from hashicorp/google 6.14.0, the
version infra/versions.tf pins) and each resource's lib/<name>/index.js maps every argument
and nested block to its Terraform name:

    synthesizeAttributes() { return { name: ..., versioning: storageBucketVersioningToTerraform(...) } }
    function storageBucketVersioningToTerraform(struct) { ... return { enabled: ... }; }

Parsing those gives, per resource type, the tree of argument names a configuration may set.
The same holds for every prebuilt cdktf provider (@cdktf/provider-time for time_sleep); the
package's package.json names the provider version it was generated from (``provider_version``).
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

Tree = dict[str, "Tree | None"]  # argument -> nested block's arguments (None for a plain attribute)

_TYPE = re.compile(r"terraformResourceType: '(\w+)'")
_FUNCTION = re.compile(r"^function (\w+ToTerraform)\(struct\) \{\n(.*?)^\}", re.S | re.M)
_SYNTH = re.compile(r"^    synthesizeAttributes\(\) \{\n(.*?)^    \}", re.S | re.M)
_ENTRY = re.compile(r"^\s+(\w+): (.+),$", re.M)
_CALL = re.compile(r"(?<![.\w])(\w+ToTerraform)\b")
META_ARGUMENTS = {"count", "for_each", "depends_on", "lifecycle", "provider", "provisioner", "connection"}


def _entries(body: str) -> dict[str, str | None]:
    """{argument: name of the function that converts its block, or None}."""
    block = body[body.index("return {"):] if "return {" in body else ""
    found = {}
    for name, expr in _ENTRY.findall(block):
        call = _CALL.search(expr)
        found[name] = call.group(1) if call else None
    return found


def _tree(entries: dict[str, str | None], functions: dict[str, dict[str, str | None]], depth: int = 0) -> Tree:
    return {name: (_tree(functions.get(fn, {}), functions, depth + 1) if fn and depth < 8 else None) for name, fn in entries.items()}


def resource_schemas(tgz: Path, wanted: set[str]) -> dict[str, Tree]:
    """{resource type: argument tree} for the wanted types found in the package."""
    schemas: dict[str, Tree] = {}
    with tarfile.open(tgz) as archive:
        for member in archive:
            data_source = member.name.startswith("package/lib/data-")  # data sources share type names
            if not re.fullmatch(r"package/lib/[\w-]+/index\.js", member.name) or data_source:
                continue
            source = archive.extractfile(member).read().decode()
            kind = _TYPE.search(source)
            if not kind or kind.group(1) not in wanted:
                continue
            functions = {m.group(1): _entries(m.group(2)) for m in _FUNCTION.finditer(source)}
            synth = _SYNTH.search(source)
            schemas[kind.group(1)] = _tree(_entries(synth.group(1)) if synth else {}, functions)
    return schemas


def provider_version(tgz: Path) -> tuple[str, str]:
    """(registry source, version) of the Terraform provider the package was generated from."""
    with tarfile.open(tgz) as archive:
        provider = json.load(archive.extractfile("package/package.json"))["cdktf"]["provider"]
    return provider["name"].removeprefix("registry.terraform.io/"), provider["version"]


def unknown_arguments(kind: str, body: dict, schema: Tree, path: str = "") -> list[str]:
    """Arguments of a parsed resource body that the schema does not have, as kind.path.name."""
    problems = []
    for name, value in body.items():
        if (not path and name in META_ARGUMENTS) or name.startswith("__"):  # python-hcl2's __comments__
            continue
        where = f"{kind}.{path}{name}"
        if name not in schema:
            problems.append(where)
            continue
        nested = schema[name]
        if nested is not None:
            blocks = value if isinstance(value, list) else [value]
            for block in blocks:
                if isinstance(block, dict):
                    problems += unknown_arguments(kind, block, nested, f"{path}{name}.")
    return problems
